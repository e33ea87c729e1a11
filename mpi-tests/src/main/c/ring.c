/*
 * ring — an MPI test program whose output depends on every rank's state at every step.
 *
 * usage: ring ITERATIONS [DELAY_MS] [STATE_MB [HOLD_AT HOLD_FILE]]
 *
 * Each rank keeps a state array (STATE_MB MiB, default 4) filled from its rank. Every
 * iteration passes a block of the state around the ring (MPI_Sendrecv to the right
 * neighbour, from the left one), mixes what it received into its own state, and every 10
 * iterations rank 0 prints the iteration and a global checksum reduced over all ranks.
 * The last line is "result CHECKSUM". The output is deterministic: the same arguments
 * give the same bytes, so a checkpointed-and-restarted run can be compared with an
 * uninterrupted one. The program checks itself too: every message carries a hash of its
 * payload, and a rank that receives a block whose hash does not match aborts with status 2.
 *
 * With HOLD_AT and HOLD_FILE, rank 0 waits before iteration HOLD_AT until HOLD_FILE exists
 * (the other ranks wait for it in MPI), and the output stays the same: a demo can take its
 * checkpoints while the job is certainly still running, however slow the machine.
 */
#include <mpi.h>
#include "mix.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096 /* uint64 words passed per step: 32 KiB messages */

static uint64_t block_hash(const uint64_t *block)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL;

	for (size_t i = 0; i < BLOCK; i++)
		h = mix(h ^ block[i]);
	return h;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

int main(int argc, char **argv)
{
	int rank, size;
	long iterations, delay_ms = 0, state_mb = 4, hold_at = -1;
	const char *hold_file = NULL;
	size_t words;
	uint64_t *state, *send, *recv, local, global;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (argc < 2) {
		if (rank == 0)
			fprintf(stderr, "usage: ring ITERATIONS [DELAY_MS] [STATE_MB [HOLD_AT HOLD_FILE]]\n");
		MPI_Finalize();
		return 1;
	}
	iterations = atol(argv[1]);
	if (argc > 2)
		delay_ms = atol(argv[2]);
	if (argc > 3)
		state_mb = atol(argv[3]);
	if (argc > 5) {
		hold_at = atol(argv[4]);
		hold_file = argv[5];
	}
	words = (size_t)state_mb * 1024 * 1024 / sizeof(uint64_t);
	if (words < BLOCK)
		words = BLOCK;

	state = malloc(words * sizeof(uint64_t));
	send = malloc((BLOCK + 1) * sizeof(uint64_t));
	recv = malloc((BLOCK + 1) * sizeof(uint64_t));
	if (!state || !send || !recv) {
		fprintf(stderr, "ring: out of memory\n");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	for (size_t i = 0; i < words; i++)
		state[i] = mix(((uint64_t)rank << 40) ^ i);

	if (rank == 0)
		printf("ring: %d ranks, %ld iterations, %ld MiB state per rank\n", size, iterations,
		       state_mb);

	for (long it = 0; it < iterations; it++) {
		int right = (rank + 1) % size, left = (rank + size - 1) % size;
		size_t off = (size_t)(it * BLOCK) % (words - BLOCK + 1);

		if (rank == 0 && it == hold_at)
			while (access(hold_file, F_OK) != 0)
				sleep_ms(10);

		memcpy(send, state + off, BLOCK * sizeof(uint64_t));
		send[BLOCK] = block_hash(send);
		MPI_Sendrecv(send, BLOCK + 1, MPI_UINT64_T, right, 0, recv, BLOCK + 1, MPI_UINT64_T,
			     left, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		if (recv[BLOCK] != block_hash(recv)) {
			fprintf(stderr, "ring: rank %d: corrupt message from rank %d at iteration %ld\n",
				rank, left, it);
			MPI_Abort(MPI_COMM_WORLD, 2);
		}
		local = 0;
		for (size_t i = 0; i < BLOCK; i++) {
			state[off + i] = mix((state[off + i] ^ (uint64_t)it) + 3 * recv[i]);
			local ^= state[off + i] + i;
		}
		/* touch the whole state now and then so every page matters */
		if (it % 50 == 0)
			for (size_t i = 0; i < words; i += 512)
				local ^= state[i];
		MPI_Reduce(&local, &global, 1, MPI_UINT64_T, MPI_BXOR, 0, MPI_COMM_WORLD);
		if (rank == 0 && it % 10 == 0) {
			printf("iter %ld checksum %016llx\n", it, (unsigned long long)global);
			fflush(stdout);
		}
		if (delay_ms > 0)
			sleep_ms(delay_ms);
	}

	local = 0;
	for (size_t i = 0; i < words; i++)
		local = mix(local ^ state[i]);
	MPI_Reduce(&local, &global, 1, MPI_UINT64_T, MPI_BXOR, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		printf("result %016llx\n", (unsigned long long)global);
		fflush(stdout);
	}
	free(state);
	free(send);
	free(recv);
	MPI_Finalize();
	return 0;
}
