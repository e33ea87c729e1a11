package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Failures in the middle of a checkpoint: the coordinator and agent killed during the dump, and a
 * disk that fills up during the dump. Either way the checkpoint is not listed, the earlier ones
 * stay restartable, and the job carries on unharmed.
 */
class FailureIT {
  private static final Duration START = Duration.ofSeconds(60);

  private static long files(Path dir) throws Exception {
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      return s.count();
    }
  }

  @Test
  void killingTheCliDuringTheDumpLeavesTheJobRunningAndNothingListed() throws Exception {
    String[] command = CohortHarness.cRing(3, 400, 20);
    String expected = ReferenceRuns.reference(command);
    try (CohortHarness cohort = new CohortHarness("crash")) {
      String job = cohort.runDetached(command);
      cohort.awaitOutput(job, "iter 40 ", START);
      String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();

      // The embedded coordinator and agent live in the CLI process: kill it mid-dump.
      Process p = cohort.start("checkpoint", job);
      Path dumping = cohort.home.resolve("agent/images/.pending/" + job + ".2/" + job + "-0/criu");
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (files(dumping) < 3 && System.nanoTime() < deadline && p.isAlive()) {
        Thread.sleep(5);
      }
      assertTrue(p.isAlive(), "the checkpoint must still be in progress when it is killed");
      p.destroyForcibly().waitFor();

      // CRIU's hook notices the agent is gone and lets the job carry on.
      int lines = cohort.readLog(job).split("\n").length;
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (cohort.readLog(job).split("\n").length < lines + 5 && System.nanoTime() < until) {
        Thread.sleep(100);
      }
      assertTrue(cohort.readLog(job).split("\n").length >= lines + 5, "the job must carry on");
      JsonArray listed = cohort.checkpoints(job);
      assertEquals(1, listed.size(), "the interrupted checkpoint must not be listed");
      assertEquals(first, listed.get(0).getAsJsonObject().get("checkpoint_id").getAsString());

      assertEquals(0, cohort.await(job));
      assertEquals(expected, cohort.log(job), "the job was not harmed");
      cohort.cohort("restart", first, "--detach").ok();
      // Queries only observe: the next agent to start (here the embedded one of the first
      // command that changes jobs) removes what the dead one left.
      assertEquals(
          0,
          files(cohort.home.resolve("agent/images/.pending/" + job + ".2")),
          "the abandoned partial image is removed");
      assertEquals(0, cohort.await(job));
      assertEquals(expected, cohort.log(job), "the earlier checkpoint still restarts");
    }
  }

  @Test
  void aDiskThatFillsUpDuringTheDumpIsAClearErrorAndChangesNothing() throws Exception {
    String[] command = CohortHarness.cRing(3, 400, 20);
    String expected = ReferenceRuns.reference(command);
    Path mount = Files.createTempDirectory(CohortHarness.base(), "fulldisk-");
    // A small file system of our own. It runs out of inodes (ENOSPC, like any full disk)
    // part-way through the second dump, after the space check of the prepare phase passed.
    exec(
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=512m,nr_inodes=4000",
        "cohort-test-full",
        mount.toString());
    CohortHarness cohort = new CohortHarness(mount);
    try {
      String job = cohort.runDetached(command);
      cohort.awaitOutput(job, "iter 40 ", START);
      String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();
      long perImage = files(cohort.imageDir(first));

      long free = Long.parseLong(exec("stat", "-f", "-c", "%d", mount.toString()).strip());
      Path filler = Files.createDirectory(mount.resolve("filler"));
      for (long i = 0; i < free - perImage / 2; i++) {
        Files.createFile(filler.resolve(Long.toString(i)));
      }

      CohortHarness.Result r = cohort.cohort("checkpoint", job);
      System.out.println("checkpoint on a full disk: exit " + r.rc() + "\n" + r.err());
      assertNotEquals(0, r.rc());
      assertTrue(
          r.err().contains("aborted") && r.err().contains("No space left on device"), r.err());
      assertEquals(1, cohort.checkpoints(job).size(), "nothing new is listed");
      assertEquals("JOB_STATE_RUNNING", cohort.state(job), "the job carries on");
      assertEquals(0, files(cohort.home.resolve("agent/images/.pending/" + job + ".2")));

      // Free the space: the job ends with the right result, the earlier checkpoint restarts.
      try (Stream<Path> s = Files.list(filler)) {
        for (Path f : s.toList()) {
          Files.delete(f);
        }
      }
      assertEquals(0, cohort.await(job));
      assertEquals(expected, cohort.log(job));
      cohort.cohort("restart", first, "--detach").ok();
      assertEquals(0, cohort.await(job));
      assertEquals(expected, cohort.log(job));
    } finally {
      cohort.killJobs();
      exec("umount", mount.toString());
      CohortHarness.deleteTree(mount);
    }
  }

  private static String exec(String... cmd) throws Exception {
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .start();
    String out = new String(p.getInputStream().readAllBytes());
    assertEquals(0, p.waitFor(), String.join(" ", cmd) + ": " + out);
    return out;
  }
}
