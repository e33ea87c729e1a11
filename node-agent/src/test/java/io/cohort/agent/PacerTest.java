package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The pacer against a fake clock that its sleeper moves: exact waits, no wall clock. */
class PacerTest {

  private static final long MS = 1_000_000L;

  private long now = 5_000 * MS; // any origin
  private final List<Long> sleeps = new ArrayList<>();

  private Pacer pacer(long bytesPerSecond) {
    return new Pacer(
        bytesPerSecond,
        () -> now,
        n -> {
          sleeps.add(n);
          now += n;
        });
  }

  @Test
  void aSteadyReaderIsHeldToTheRate() throws InterruptedException {
    Pacer p = pacer(1_000);
    long start = now;
    for (int i = 0; i < 10; i++) {
      p.paid(500);
    }
    assertEquals(5_000 * MS, now - start, "5000 bytes at 1000 B/s take 5 s");
    assertEquals(10, sleeps.size());
    sleeps.forEach(s -> assertEquals(500 * MS, s));
  }

  @Test
  void timeSpentReceivingCountsTowardsTheRate() throws InterruptedException {
    Pacer p = pacer(1_000);
    now += 80 * MS; // the first 1000 bytes took 80 ms to arrive
    p.paid(1_000);
    assertEquals(List.of(920 * MS), sleeps, "waits only for the rest of the second");
  }

  @Test
  void anIdleReaderCatchesUpByATenthOfASecondAtMost() throws InterruptedException {
    Pacer p = pacer(1_000);
    p.paid(1_000);
    sleeps.clear();
    now += 10_000 * MS; // a long pause: not 10 s of credit
    p.paid(1_000);
    assertEquals(List.of(900 * MS), sleeps);
    p.paid(100);
    assertEquals(List.of(900 * MS, 100 * MS), sleeps);
  }

  @Test
  void noLimitNeverWaits() throws InterruptedException {
    Pacer p = pacer(0);
    long start = now;
    p.paid(1L << 40);
    assertEquals(List.of(), sleeps);
    assertEquals(start, now);
  }

  @Test
  void largeReadsAtHighRatesDoNotOverflow() throws InterruptedException {
    Pacer p = pacer(10L << 30); // 10 GiB/s
    p.paid(20L << 30);
    assertEquals(List.of(2_000 * MS), sleeps);
  }
}
