/*
 * pingpong — round-trip latency and throughput between ranks 0 and 1.
 *
 * usage: pingpong [MAX_BYTES] [SECONDS_PER_SIZE]
 *        pingpong fixed ROUND_TRIPS BYTES
 *
 * For each message size from 8 bytes to MAX_BYTES (default 4 MiB), doubling, rank 0
 * sends a message to rank 1, which sends it back: 50 round trips to warm up and calibrate,
 * then as many as take about SECONDS_PER_SIZE (default 1), timed. Rank 0 prints one line per size:
 *   "size BYTES rtt_us MICROSECONDS mbps MEGABYTES_PER_SECOND"
 * (throughput counts both directions' bytes over the round trip) and finally
 * "elapsed SECONDS" for the whole run.
 *
 * With "fixed", it does exactly ROUND_TRIPS round trips of BYTES and prints only
 * "elapsed SECONDS" (from after MPI_Init to the end): a fixed amount of communication whose
 * run time can be compared between launchers.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void round_trips(int me, char *buf, long size, long reps)
{
	for (long i = 0; i < reps; i++) {
		if (me == 0) {
			MPI_Send(buf, (int)size, MPI_CHAR, 1, 0, MPI_COMM_WORLD);
			MPI_Recv(buf, (int)size, MPI_CHAR, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		} else {
			MPI_Recv(buf, (int)size, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			MPI_Send(buf, (int)size, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
		}
	}
}

int main(int argc, char **argv)
{
	int me, n;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	MPI_Comm_size(MPI_COMM_WORLD, &n);
	if (argc == 4 && strcmp(argv[1], "fixed") == 0 && n == 2) {
		long trips = atol(argv[2]), bytes = atol(argv[3]);
		char *b = calloc(bytes > 0 ? bytes : 1, 1);
		if (b == NULL || trips < 1 || bytes < 1)
			MPI_Abort(MPI_COMM_WORLD, 1);
		double t0 = MPI_Wtime();
		round_trips(me, b, bytes, trips);
		if (me == 0)
			printf("elapsed %.3f\n", MPI_Wtime() - t0);
		free(b);
		MPI_Finalize();
		return 0;
	}
	long max = argc > 1 ? atol(argv[1]) : 4L << 20;
	double per_size = argc > 2 ? atof(argv[2]) : 1.0;
	if (n != 2 || max < 8 || per_size <= 0) {
		if (me == 0)
			fprintf(stderr, "usage: pingpong [MAX_BYTES] [SECONDS_PER_SIZE] (2 ranks)\n");
		MPI_Finalize();
		return 1;
	}
	char *buf = malloc(max);
	if (buf == NULL)
		MPI_Abort(MPI_COMM_WORLD, 1);
	memset(buf, 0x5a, max);
	double start = MPI_Wtime();
	for (long size = 8; size <= max; size *= 2) {
		/* Warm up and calibrate on 50 round trips, then time as many as fill the period. */
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = MPI_Wtime();
		round_trips(me, buf, size, 50);
		long reps = (long)(per_size / ((MPI_Wtime() - t0) / 50));
		if (reps < 20)
			reps = 20;
		MPI_Bcast(&reps, 1, MPI_LONG, 0, MPI_COMM_WORLD);
		MPI_Barrier(MPI_COMM_WORLD);
		t0 = MPI_Wtime();
		round_trips(me, buf, size, reps);
		double t = MPI_Wtime() - t0;
		if (me == 0) {
			printf("size %ld rtt_us %.2f mbps %.1f\n", size, t / reps * 1e6,
			       2.0 * size * reps / t / 1e6);
			fflush(stdout);
		}
	}
	if (me == 0)
		printf("elapsed %.3f\n", MPI_Wtime() - start);
	free(buf);
	MPI_Finalize();
	return 0;
}
