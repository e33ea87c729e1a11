/*
 * deck — an MPI test program that reads its input deck from standard input, as codes run with
 * `mpirun -np N code < in.deck` do (mpirun passes its stdin on to rank 0).
 *
 * usage: deck [DELAY_MS] < DECK
 *
 * Rank 0 reads DECK one line at a time and broadcasts each line; every rank acts on it:
 *   steps N     N steps of work: each rank mixes its state, the ranks reduce a checksum, and
 *               rank 0 prints "step I checksum X" on stdout (DELAY_MS between steps)
 *   say TEXT    rank 0 prints TEXT on stdout
 *   warn TEXT   rank 0 prints "warning: TEXT" on stderr
 *   pause MS    every rank sleeps MS milliseconds (keeps what comes before and after apart)
 *   # ...       a comment; blank lines are skipped
 *   end         stop (so does the end of the input)
 * Anything else: rank 0 prints "deck: unknown line: ..." on stderr and all ranks exit 2.
 * The output depends only on the deck: a run checkpointed and restarted while it reads gives the
 * same bytes as one that was not. The last line is "result X LINES" (lines read).
 *
 * SIGUSR1 and SIGUSR2 are caught by every rank: at its next step, each rank that got one prints
 * "rank R got SIGUSR1" (or 2) on stdout, so a test can see that a signal reached the ranks.
 */
#include <mpi.h>
#include "mix.h"
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_LEN 256
#define STATE_WORDS (64 * 1024)

static volatile sig_atomic_t got_usr[2];

static void on_signal(int sig)
{
	got_usr[sig == SIGUSR2] = 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void report_signals(int rank)
{
	for (int i = 0; i < 2; i++) {
		if (got_usr[i]) {
			got_usr[i] = 0;
			printf("rank %d got SIGUSR%d\n", rank, i + 1);
			fflush(stdout);
		}
	}
}

/* Rank 0's next line of the deck, broadcast to all; "end" at the end of the input. */
static void next_line(int rank, char *line)
{
	if (rank == 0) {
		if (!fgets(line, LINE_MAX_LEN, stdin))
			strcpy(line, "end");
		line[strcspn(line, "\n")] = '\0';
	}
	MPI_Bcast(line, LINE_MAX_LEN, MPI_CHAR, 0, MPI_COMM_WORLD);
}

int main(int argc, char **argv)
{
	static uint64_t state[STATE_WORDS];
	char line[LINE_MAX_LEN];
	uint64_t sum = 0;
	long delay_ms = argc > 1 ? atol(argv[1]) : 0, lines = 0, step = 0, n;
	int rank;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	signal(SIGUSR1, on_signal);
	signal(SIGUSR2, on_signal);
	for (size_t i = 0; i < STATE_WORDS; i++)
		state[i] = mix((uint64_t)rank * STATE_WORDS + i);

	for (;;) {
		next_line(rank, line);
		if (strcmp(line, "end") == 0)
			break;
		lines++;
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (sscanf(line, "steps %ld", &n) == 1) {
			for (long s = 0; s < n; s++) {
				uint64_t local = 0, total;

				step++;
				for (size_t i = 0; i < STATE_WORDS; i++) {
					state[i] = mix(state[i] ^ (uint64_t)step);
					local ^= state[i];
				}
				MPI_Allreduce(&local, &total, 1, MPI_UINT64_T, MPI_BXOR, MPI_COMM_WORLD);
				sum = mix(sum ^ total);
				if (rank == 0) {
					printf("step %ld checksum %016llx\n", step, (unsigned long long)total);
					fflush(stdout);
				}
				report_signals(rank);
				if (delay_ms)
					sleep_ms(delay_ms);
			}
		} else if (sscanf(line, "pause %ld", &n) == 1) {
			sleep_ms(n);
		} else if (strncmp(line, "say ", 4) == 0) {
			if (rank == 0) {
				printf("%s\n", line + 4);
				fflush(stdout);
			}
		} else if (strncmp(line, "warn ", 5) == 0) {
			if (rank == 0)
				fprintf(stderr, "warning: %s\n", line + 5);
		} else {
			if (rank == 0)
				fprintf(stderr, "deck: unknown line: %s\n", line);
			MPI_Finalize();
			return 2;
		}
	}
	if (rank == 0) {
		printf("result %016llx %ld\n", (unsigned long long)sum, lines);
		fflush(stdout);
	}
	MPI_Finalize();
	return 0;
}
