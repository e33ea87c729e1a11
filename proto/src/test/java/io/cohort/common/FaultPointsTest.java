package io.cohort.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FaultPointsTest {
  @TempDir Path dir;

  @Test
  void aPointNotHeldIsRecordedAndPassed() {
    FaultPoints.reach(dir, "agent.dump", "j1.2/j1-0", Duration.ofMinutes(1));
    FaultPoints.reach(dir, "agent.dump", "j1.2/j1-1", Duration.ofMinutes(1));
    assertEquals(
        "j1.2/j1-0\nj1.2/j1-1\n", read(dir.resolve("agent.dump.reached")), "both are recorded");
  }

  @Test
  void aHeldPointWaitsUntilTheHoldIsRemoved() throws Exception {
    Path hold = Files.createFile(dir.resolve("coordinator.commit.hold"));
    CompletableFuture<Void> passed =
        CompletableFuture.runAsync(
            () -> FaultPoints.reach(dir, "coordinator.commit", "j1.3", Duration.ofMinutes(1)));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!Files.exists(dir.resolve("coordinator.commit.reached"))) {
      assertTrue(System.nanoTime() < deadline, "the point is reached");
      Thread.sleep(5);
    }
    Thread.sleep(200);
    assertFalse(passed.isDone(), "held while the hold exists");
    Files.delete(hold);
    passed.get(10, TimeUnit.SECONDS);
  }

  @Test
  void aHoldNobodyRemovesEndsAtItsLimit() throws Exception {
    Files.createFile(dir.resolve("agent.seal.hold"));
    CompletableFuture.runAsync(
            () -> FaultPoints.reach(dir, "agent.seal", "j1.4/j1-0", Duration.ofMillis(100)))
        .get(10, TimeUnit.SECONDS);
  }

  private static String read(Path p) {
    try {
      return Files.readString(p);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
