package io.cohort.mpitests;

import mpi.MPI;
import mpi.MPIException;

/**
 * The Java twin of ring.c, on the Open MPI Java bindings: each rank keeps a state array, passes a
 * block of it around the ring every iteration (with a hash the receiver checks), mixes what it
 * received into its state, and rank 0 prints a global checksum every 10 iterations and "result
 * CHECKSUM" at the end. Deterministic for given arguments.
 *
 * <p>usage: Ring ITERATIONS [DELAY_MS] [STATE_MB]
 */
public final class Ring {
  private static final int BLOCK = 4096;

  private Ring() {}

  static long mix(long x) {
    x ^= x >>> 33;
    x *= 0xff51afd7ed558ccdL;
    x ^= x >>> 33;
    x *= 0xc4ceb9fe1a85ec53L;
    x ^= x >>> 33;
    return x;
  }

  static long blockHash(long[] block) {
    long h = 0x9e3779b97f4a7c15L;
    for (int i = 0; i < BLOCK; i++) {
      h = mix(h ^ block[i]);
    }
    return h;
  }

  public static void main(String[] args) throws MPIException, InterruptedException {
    MPI.Init(args);
    int rank = MPI.COMM_WORLD.getRank();
    int size = MPI.COMM_WORLD.getSize();
    if (args.length < 1) {
      if (rank == 0) {
        System.err.println("usage: Ring ITERATIONS [DELAY_MS] [STATE_MB]");
      }
      MPI.Finalize();
      System.exit(1);
    }
    long iterations = Long.parseLong(args[0]);
    long delayMs = args.length > 1 ? Long.parseLong(args[1]) : 0;
    long stateMb = args.length > 2 ? Long.parseLong(args[2]) : 4;
    int words = (int) Math.max(BLOCK, stateMb * 1024 * 1024 / 8);
    long[] state = new long[words];
    long[] send = new long[BLOCK + 1];
    long[] recv = new long[BLOCK + 1];
    long[] local = new long[1];
    long[] global = new long[1];
    for (int i = 0; i < words; i++) {
      state[i] = mix(((long) rank << 40) ^ i);
    }
    if (rank == 0) {
      System.out.printf(
          "ring: %d ranks, %d iterations, %d MiB state per rank%n", size, iterations, stateMb);
    }
    int right = (rank + 1) % size;
    int left = (rank + size - 1) % size;
    for (long it = 0; it < iterations; it++) {
      int off = (int) ((it * BLOCK) % (words - BLOCK + 1));
      System.arraycopy(state, off, send, 0, BLOCK);
      send[BLOCK] = blockHash(send);
      MPI.COMM_WORLD.sendRecv(
          send, BLOCK + 1, MPI.LONG, right, 0, recv, BLOCK + 1, MPI.LONG, left, 0);
      if (recv[BLOCK] != blockHash(recv)) {
        System.err.printf(
            "Ring: rank %d: corrupt message from rank %d at iteration %d%n", rank, left, it);
        MPI.COMM_WORLD.abort(2);
      }
      long l = 0;
      for (int i = 0; i < BLOCK; i++) {
        state[off + i] = mix((state[off + i] ^ it) + 3 * recv[i]);
        l ^= state[off + i] + i;
      }
      if (it % 50 == 0) {
        for (int i = 0; i < words; i += 512) {
          l ^= state[i];
        }
      }
      local[0] = l;
      MPI.COMM_WORLD.reduce(local, global, 1, MPI.LONG, MPI.BXOR, 0);
      if (rank == 0 && it % 10 == 0) {
        System.out.printf("iter %d checksum %016x%n", it, global[0]);
        System.out.flush();
      }
      if (delayMs > 0) {
        Thread.sleep(delayMs);
      }
    }
    long l = 0;
    for (int i = 0; i < words; i++) {
      l = mix(l ^ state[i]);
    }
    local[0] = l;
    MPI.COMM_WORLD.reduce(local, global, 1, MPI.LONG, MPI.BXOR, 0);
    if (rank == 0) {
      System.out.printf("result %016x%n", global[0]);
      System.out.flush();
    }
    MPI.Finalize();
  }
}
