package io.cohort.agent;

import java.util.function.LongSupplier;

/**
 * Keeps a reader at most at a given rate: after each read of {@code n} bytes, {@link #paid} waits
 * until that many bytes are due at the rate (a token bucket refilled at the rate). A reader that
 * was idle may catch up by at most {@link #BURST_NANOS} worth of bytes, so a pause is not followed
 * by a burst at full speed.
 *
 * <p>Used on the receiving side of an image stream: while the importer waits, gRPC's flow control
 * stops the sender once the stream's window is full, so the network carries the rate too.
 *
 * <p>Not thread-safe: one per stream.
 */
final class Pacer {

  /** How much unused rate an idle reader keeps: a tenth of a second's worth. */
  static final long BURST_NANOS = 100_000_000L;

  /** How the pacer waits (tests pass one that moves a fake clock). */
  interface Sleeper {
    void sleepNanos(long nanos) throws InterruptedException;
  }

  private final long bytesPerSecond;
  private final LongSupplier clock;
  private final Sleeper sleeper;
  private long due;

  /**
   * @param bytesPerSecond the most bytes per second; 0 or less: no limit
   * @param clock nanoseconds, as {@link System#nanoTime}
   */
  Pacer(long bytesPerSecond, LongSupplier clock, Sleeper sleeper) {
    this.bytesPerSecond = bytesPerSecond;
    this.clock = clock;
    this.sleeper = sleeper;
    this.due = clock.getAsLong();
  }

  /** A pacer on the real clock. */
  static Pacer of(long bytesPerSecond) {
    return new Pacer(
        bytesPerSecond, System::nanoTime, n -> Thread.sleep(n / 1_000_000, (int) (n % 1_000_000)));
  }

  /**
   * {@code bytes} were just read: waits until they are within the rate.
   *
   * @throws InterruptedException if interrupted while waiting
   */
  void paid(long bytes) throws InterruptedException {
    if (bytesPerSecond <= 0 || bytes <= 0) {
      return;
    }
    long now = clock.getAsLong();
    // Nanoseconds the bytes take at the rate; in double, as bytes * 1e9 overflows a long above
    // 9 GB.
    long cost = (long) Math.ceil(bytes * 1e9 / bytesPerSecond);
    due = Math.max(due, now - BURST_NANOS) + cost;
    if (due > now) {
      sleeper.sleepNanos(due - now);
    }
  }
}
