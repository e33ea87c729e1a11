/*
 * writer — an MPI test program that writes its own files, as simulation codes do.
 *
 * usage: writer DIR STEPS [DELAY_MS]
 *
 * Every rank R keeps three files in DIR and changes each at every step:
 *   out-R.txt   opened with fopen("w"): one line per step (a trajectory-like output);
 *   log-R.txt   opened with fopen("a"): one line per step (an append-only log);
 *   data-R.bin  opened O_RDWR: 16 slots of 8 bytes, slot (step % 16) rewritten in place
 *               with pwrite (a restart file updated in place).
 * The values come from an MPI_Allreduce over every rank at every step, so the files depend
 * on all ranks' state. Rank 0 prints "step N" every 10 steps and "done" at the end. The
 * files are a deterministic function of the arguments: a run checkpointed, run on, killed
 * and restarted from the checkpoint must leave them byte-identical to an uninterrupted run.
 */
#include <mpi.h>
#include "mix.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 16

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static FILE *open_file(const char *dir, const char *name, int rank, const char *mode)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%d.txt", dir, name, rank);
	f = fopen(path, mode);
	if (!f) {
		fprintf(stderr, "writer: cannot open %s: %s\n", path, strerror(errno));
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	return f;
}

int main(int argc, char **argv)
{
	int rank, fd;
	long steps, delay_ms = 0;
	uint64_t state, global;
	char path[4096];
	FILE *out, *log;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	if (argc < 3) {
		if (rank == 0)
			fprintf(stderr, "usage: writer DIR STEPS [DELAY_MS]\n");
		MPI_Finalize();
		return 1;
	}
	steps = atol(argv[2]);
	if (argc > 3)
		delay_ms = atol(argv[3]);
	out = open_file(argv[1], "out", rank, "w");
	log = open_file(argv[1], "log", rank, "a");
	snprintf(path, sizeof(path), "%s/data-%d.bin", argv[1], rank);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "writer: cannot open %s: %s\n", path, strerror(errno));
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	state = mix(0x5eed + (uint64_t)rank);
	for (long step = 0; step < steps; step++) {
		MPI_Allreduce(&state, &global, 1, MPI_UINT64_T, MPI_BXOR, MPI_COMM_WORLD);
		state = mix(state ^ global ^ (uint64_t)step);
		fprintf(out, "step %ld rank %d value %016llx\n", step, rank,
			(unsigned long long)state);
		fprintf(log, "log step %ld global %016llx\n", step, (unsigned long long)global);
		if (fflush(out) != 0 || fflush(log) != 0 ||
		    pwrite(fd, &state, sizeof(state), (off_t)(step % SLOTS) * 8) != sizeof(state)) {
			fprintf(stderr, "writer: write failed: %s\n", strerror(errno));
			MPI_Abort(MPI_COMM_WORLD, 2);
		}
		if (rank == 0 && step % 10 == 0) {
			printf("step %ld\n", step);
			fflush(stdout);
		}
		sleep_ms(delay_ms);
	}
	fclose(out);
	fclose(log);
	close(fd);
	if (rank == 0)
		printf("done\n");
	MPI_Finalize();
	return 0;
}
