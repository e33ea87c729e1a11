package io.cohort.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A stuck command never holds its caller past the deadline; input reaches the command. */
class ProcessRunnerTest {
  @Test
  void aCommandPastItsDeadlineIsKilledAndReported() {
    long t0 = System.nanoTime();
    CohortException e =
        assertThrows(
            CohortException.class,
            () -> ProcessRunner.run(Duration.ofMillis(300), Map.of(), List.of("sleep", "30")));
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertEquals(CohortException.Kind.DEADLINE_EXCEEDED, e.kind());
    assertTrue(ms < 10_000, "returned after " + ms + " ms");
    assertTrue(e.getMessage().contains("sleep 30"), e.getMessage());
  }

  @Test
  void outputAndExitStatusComeBack() {
    ProcessRunner.Result r = ProcessRunner.run("sh", "-c", "echo out; echo err >&2; exit 3");
    assertEquals(3, r.exitCode());
    assertTrue(r.output().contains("out") && r.output().contains("err"), r.output());
  }

  @Test
  void aBackgroundChildHoldingTheOutputDoesNotBlockTheWait() {
    long t0 = System.nanoTime();
    ProcessRunner.Result r = ProcessRunner.run("sh", "-c", "sleep 20 & echo started");
    assertTrue((System.nanoTime() - t0) / 1_000_000 < 10_000);
    assertEquals("started", r.output());
  }

  @Test
  void inputReachesTheCommandAndOneThatIgnoresItIsNoError() {
    byte[] in = "MUNGE:abc:\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    assertEquals(
        "MUNGE:abc:", ProcessRunner.run(Duration.ofSeconds(20), List.of("cat"), in).output());
    ProcessRunner.Result r =
        ProcessRunner.run(Duration.ofSeconds(20), List.of("sh", "-c", "exit 4"), in);
    assertEquals(4, r.exitCode());
  }
}
