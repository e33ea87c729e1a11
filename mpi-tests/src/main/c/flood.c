/*
 * flood — an MPI test program that keeps large messages in flight all the time.
 *
 * usage: flood STOP_FILE [MESSAGE_BYTES] [WINDOW]
 *
 * Ranks are paired across the two halves of the job (rank r with r + n/2, so with a job of
 * two vhosts every pair crosses between them). Round after round, every rank posts WINDOW
 * receives from its partner and WINDOW sends of MESSAGE_BYTES (default 1 MiB, window 4) to
 * it, and waits for all of them. Every message starts with its sequence number and the rest
 * is derived from (sender, sequence); the receiver checks that the messages come in order,
 * none missing or repeated, and that every byte is what the sender wrote. A bad message
 * makes the rank print what was wrong and abort with status 2.
 *
 * Rank 0 prints "round N" every 10 rounds and, between rounds, looks for STOP_FILE (a path
 * every rank's node can see); once it exists all ranks stop after the same round and each
 * prints "rank R: N messages of B bytes from rank P, all intact".
 */
#include <mpi.h>
#include "mix.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Word i of message seq from rank src: word 0 is the sequence number. */
static uint64_t word(int src, uint64_t seq, size_t i)
{
	return i == 0 ? seq : mix(((uint64_t)src << 48) ^ (seq << 20) ^ i);
}

static void fill(uint64_t *msg, size_t words, int src, uint64_t seq)
{
	for (size_t i = 0; i < words; i++)
		msg[i] = word(src, seq, i);
}

static void check(const uint64_t *msg, size_t words, int me, int src, uint64_t seq)
{
	if (msg[0] != seq) {
		printf("rank %d: BAD message from rank %d: sequence %llu where %llu was due (%s)\n",
		       me, src, (unsigned long long)msg[0], (unsigned long long)seq,
		       msg[0] < seq ? "repeated" : "missing");
		fflush(stdout);
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	for (size_t i = 1; i < words; i++) {
		if (msg[i] != word(src, seq, i)) {
			printf("rank %d: BAD message %llu from rank %d: word %zu corrupt\n", me,
			       (unsigned long long)seq, src, i);
			fflush(stdout);
			MPI_Abort(MPI_COMM_WORLD, 2);
		}
	}
}

int main(int argc, char **argv)
{
	int me, n;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	MPI_Comm_size(MPI_COMM_WORLD, &n);
	if (argc < 2 || n % 2 != 0) {
		if (me == 0)
			fprintf(stderr, "usage: flood STOP_FILE [MESSAGE_BYTES] [WINDOW] "
					"(an even number of ranks)\n");
		MPI_Finalize();
		return 1;
	}
	const char *stop_file = argv[1];
	size_t bytes = argc > 2 ? strtoull(argv[2], NULL, 10) : 1 << 20;
	int window = argc > 3 ? atoi(argv[3]) : 4;
	size_t words = bytes / sizeof(uint64_t);
	if (words < 1 || window < 1) {
		if (me == 0)
			fprintf(stderr, "flood: MESSAGE_BYTES must be at least 8 and WINDOW at least 1\n");
		MPI_Finalize();
		return 1;
	}
	int partner = (me + n / 2) % n;

	uint64_t *out = malloc(words * sizeof(uint64_t) * window);
	uint64_t *in = malloc(words * sizeof(uint64_t) * window);
	MPI_Request *req = malloc(sizeof(MPI_Request) * 2 * window);
	if (out == NULL || in == NULL || req == NULL) {
		fprintf(stderr, "flood: out of memory\n");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}

	uint64_t sent = 0, received = 0;
	for (long round = 1;; round++) {
		for (int w = 0; w < window; w++) {
			MPI_Irecv(in + w * words, (int)words, MPI_UINT64_T, partner, 0, MPI_COMM_WORLD,
				  &req[w]);
			fill(out + w * words, words, me, sent + w);
			MPI_Isend(out + w * words, (int)words, MPI_UINT64_T, partner, 0, MPI_COMM_WORLD,
				  &req[window + w]);
		}
		MPI_Waitall(2 * window, req, MPI_STATUSES_IGNORE);
		for (int w = 0; w < window; w++)
			check(in + w * words, words, me, partner, received + w);
		sent += window;
		received += window;

		int stop = 0;
		if (me == 0) {
			stop = access(stop_file, F_OK) == 0;
			if (round % 10 == 0) {
				printf("round %ld\n", round);
				fflush(stdout);
			}
		}
		MPI_Bcast(&stop, 1, MPI_INT, 0, MPI_COMM_WORLD);
		if (stop)
			break;
	}

	/* One line per rank, in rank order. */
	for (int r = 0; r < n; r++) {
		if (r == me) {
			printf("rank %d: %llu messages of %zu bytes from rank %d, all intact\n", me,
			       (unsigned long long)received, words * sizeof(uint64_t), partner);
			fflush(stdout);
		}
		MPI_Barrier(MPI_COMM_WORLD);
	}
	free(out);
	free(in);
	free(req);
	MPI_Finalize();
	return 0;
}
