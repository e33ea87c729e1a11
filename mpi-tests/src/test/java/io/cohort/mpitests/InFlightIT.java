package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A job that keeps large messages in flight between two nodes all the time (the flood program: 1
 * MiB messages, four outstanding each way per rank pair, every pair across the overlay),
 * checkpointed again and again while it runs, then stopped by a checkpoint and restarted on another
 * pair of nodes. The overlay records the packets in flight at every cut and the restart re-injects
 * them; the program checks every message's sequence number and every byte, so a lost, repeated or
 * corrupted message fails it.
 */
class InFlightIT {
  private static final int CHECKPOINTS = 10;
  private static CohortHarness cohort;

  @BeforeAll
  static void up() throws Exception {
    cohort = new CohortHarness("inflight");
    cohort.clusterUp(3, "cohortif", "198.18.80");
  }

  @AfterAll
  static void down() throws Exception {
    cohort.closeCluster();
  }

  @Test
  void largeMessagesInFlightSurviveEveryCheckpointAndARestart() throws Exception {
    Path stopFile = cohort.home.resolve("flood-stop");
    String job =
        cohort
            .cohort(
                "run",
                "--detach",
                "--json",
                "--nodes",
                "n1,n2",
                "--slots",
                "2",
                "--",
                "mpirun",
                "-np",
                "4",
                CohortHarness.REPO.resolve("mpi-tests/target/mpi/flood").toString(),
                stopFile.toString(),
                "1048576",
                "4")
            .ok()
            .json()
            .get("job")
            .getAsString();
    Path log = cohort.clusterLog("n1", job);
    CohortHarness.awaitFile(log, "round 10\n", Duration.ofSeconds(90));

    List<Long> recorded = new ArrayList<>();
    System.out.printf(
        "%-10s %10s %12s %9s %9s%n", "checkpoint", "in-flight", "bytes", "frozen", "total");
    for (int i = 0; i < CHECKPOINTS; i++) {
      JsonObject c = cohort.checkpoint(job, false);
      recorded.add(c.get("inflight_packets").getAsLong());
      System.out.printf(
          "%-10s %10d %12d %7dms %7dms%n",
          c.get("checkpoint").getAsString(),
          c.get("inflight_packets").getAsLong(),
          c.get("inflight_bytes").getAsLong(),
          c.get("freeze_ms").getAsLong(),
          c.get("total_ms").getAsLong());
      assertEquals("JOB_STATE_RUNNING", cohort.state(job));
    }
    int roundsBefore = lastRound(Files.readString(log));

    JsonObject stop = cohort.checkpoint(job, true);
    String ckpt = stop.get("checkpoint").getAsString();
    assertEquals("JOB_STATE_STOPPED", cohort.state(job));
    long atStop = stop.get("inflight_packets").getAsLong();
    System.out.printf(
        "%-10s %10d %12d (--stop)%n", ckpt, atStop, stop.get("inflight_bytes").getAsLong());
    recorded.add(atStop);
    // With 1 MiB messages always under way, the cuts must catch some of them in flight; if
    // the barrier did not cut the overlay's channels, nothing would ever be recorded.
    assertTrue(
        recorded.stream().mapToLong(Long::longValue).sum() > 0,
        "packets in flight recorded at the cuts: " + recorded);

    // The listing shows what was recorded at each checkpoint.
    String listing = cohort.cohort("checkpoints", job).ok().out();
    assertTrue(listing.contains("IN-FLIGHT"), listing);
    assertTrue(
        listing
            .lines()
            .anyMatch(
                l -> l.startsWith(ckpt + " ") && l.matches(".*\\s" + atStop + "\\s+yes\\s.*")),
        listing);

    JsonObject restart =
        cohort.cohort("restart", ckpt, "--nodes", "n2,n3", "--detach", "--json").ok().json();
    assertEquals(
        atStop,
        restart.get("inflight_packets").getAsLong(),
        "every packet recorded at the cut is re-injected at the restart");
    awaitRound(job, roundsBefore + 20);
    Files.writeString(stopFile, "");
    assertEquals(0, cohort.await(job));

    String out = cohort.log(job);
    assertFalse(out.contains("BAD"), out);
    Matcher m =
        Pattern.compile(
                "rank (\\d): (\\d+) messages of 1048576 bytes from rank (\\d), " + "all intact")
            .matcher(out);
    List<Long> counts = new ArrayList<>();
    while (m.find()) {
      assertEquals((Integer.parseInt(m.group(1)) + 2) % 4, Integer.parseInt(m.group(3)));
      counts.add(Long.parseLong(m.group(2)));
    }
    assertEquals(4, counts.size(), "one line per rank: " + out);
    assertEquals(1, counts.stream().distinct().count(), "every rank got as many: " + counts);
    assertTrue(counts.get(0) >= 4L * (roundsBefore + 20), "all rounds counted: " + counts);
  }

  private static int lastRound(String out) {
    Matcher m = Pattern.compile("round (\\d+)\n").matcher(out);
    int last = 0;
    while (m.find()) {
      last = Integer.parseInt(m.group(1));
    }
    return last;
  }

  /** Waits until the (restarted) job has got past {@code round}. */
  private static void awaitRound(String job, int round) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
    while (lastRound(cohort.log(job)) < round) {
      assertTrue(
          System.nanoTime() < deadline,
          "the restarted job did not reach round " + round + ":\n" + cohort.log(job));
      Thread.sleep(500);
    }
  }
}
