package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.nio.file.Files;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Nodes that share one image directory (`cluster up --shared-images`, as a cluster file system
 * would give): a checkpoint written on n1 restarts on n2 in place, with nothing copied, while n1 is
 * down.
 */
class SharedImagesIT {
  private static CohortHarness cohort;

  @BeforeAll
  static void up() throws Exception {
    cohort = new CohortHarness("shared");
    cohort
        .cohort(
            Duration.ofMinutes(3),
            "cluster",
            "up",
            "--nodes",
            "2",
            "--prefix",
            "cohortsh",
            "--subnet",
            "198.18.81",
            "--shared-images")
        .ok();
  }

  @AfterAll
  static void down() throws Exception {
    cohort.closeCluster();
  }

  @Test
  void aCheckpointRestartsOnAnotherNodeWithoutCopyingWhileItsNodeIsDown() throws Exception {
    String[] command = CohortHarness.cRing(3, 400, 20);
    String expected = ReferenceRuns.reference(command);
    String[] args = new String[command.length + 6];
    System.arraycopy(
        new String[] {"run", "--detach", "--json", "--nodes", "n1", "--"}, 0, args, 0, 6);
    System.arraycopy(command, 0, args, 6, command.length);
    String job = cohort.cohort(args).ok().json().get("job").getAsString();
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));
    String ckpt = cohort.checkpoint(job, true).get("checkpoint").getAsString();

    assertTrue(
        Files.isRegularFile(
            cohort.home.resolve("cluster/shared-images/" + ckpt + "/" + job + "-0/manifest.json")),
        "the image is in the shared directory");
    assertFalse(Files.exists(cohort.home.resolve("cluster/nodes/n1/images/" + ckpt)));

    cohort.cohort("cluster", "stop", "n1").ok();
    JsonObject restart =
        cohort.cohort("restart", ckpt, "--nodes", "n2", "--detach", "--json").ok().json();
    assertEquals(0, restart.get("transferred_bytes").getAsLong(), "restored in place");
    assertEquals(
        "n2",
        cohort
            .job(job)
            .getAsJsonArray("vhosts")
            .get(0)
            .getAsJsonObject()
            .get("node")
            .getAsString());
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job));
  }
}
