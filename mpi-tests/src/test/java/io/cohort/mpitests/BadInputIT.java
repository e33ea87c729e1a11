package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * Bad input gets a clear error and a nonzero exit, and changes nothing else: the job's state, its
 * output and the list of checkpoints stay as they were, and a good restart still works.
 */
class BadInputIT {
  /** A small job that counts; its output shows exactly where it was stopped. */
  private static final String[] COUNTER = {
    "sh", "-c", "i=0; while [ $i -lt 400 ]; do echo $i; i=$((i+1)); sleep 0.05; done"
  };

  private CohortHarness cohort;

  @BeforeEach
  void setUp(TestInfo info) throws Exception {
    cohort = new CohortHarness(info.getTestMethod().orElseThrow().getName());
  }

  @AfterEach
  void tearDown() throws Exception {
    cohort.close();
  }

  private static void assertFails(CohortHarness.Result r, String expectedText) {
    assertNotEquals(0, r.rc(), "must fail: " + r);
    assertTrue(r.err().contains(expectedText), "error must say '" + expectedText + "': " + r.err());
  }

  /** A stopped job with one checkpoint; returns the checkpoint id. */
  private String stoppedJob() throws Exception {
    String job = cohort.runDetached(COUNTER);
    cohort.awaitOutput(job, "\n20\n", Duration.ofSeconds(30));
    return cohort.checkpoint(job, true).get("checkpoint").getAsString();
  }

  /** After a refused restart: the job is still stopped, its log and the catalog unchanged. */
  private void assertNothingChanged(String ckpt, String logBefore) {
    String job = ckpt.substring(0, ckpt.indexOf('.'));
    assertEquals("JOB_STATE_STOPPED", cohort.state(job));
    assertEquals(logBefore, cohort.log(job));
    assertEquals(1, cohort.checkpoints(job).size());
  }

  @Test
  void restartOfUnknownIds() {
    assertFails(cohort.cohort("restart", "999"), "job 999 does not exist");
    assertFails(cohort.cohort("restart", "999.1"), "checkpoint 999.1 does not exist");
    assertFails(cohort.cohort("restart", "not-an-id"), "neither a job id nor a checkpoint id");
    assertEquals(0, cohort.checkpoints("").size());
  }

  @Test
  void restartOfImageWithOneFlippedByteIsRefused() throws Exception {
    String ckpt = stoppedJob();
    String job = ckpt.substring(0, ckpt.indexOf('.'));
    String logBefore = cohort.log(job);
    Path pages;
    try (Stream<Path> s = Files.list(cohort.imageDir(ckpt).resolve("criu"))) {
      pages =
          s.filter(p -> p.getFileName().toString().startsWith("pages-"))
              .max(Comparator.comparingLong(p -> p.toFile().length()))
              .orElseThrow();
    }
    long at = pages.toFile().length() / 2;
    byte original;
    try (RandomAccessFile f = new RandomAccessFile(pages.toFile(), "rw")) {
      f.seek(at);
      original = f.readByte();
      f.seek(at);
      f.writeByte(original ^ 0x01);
    }
    assertFails(cohort.cohort("restart", ckpt), "does not match its manifest");
    assertNothingChanged(ckpt, logBefore);

    // Put the byte back: the very same checkpoint restarts, so nothing else was touched.
    try (RandomAccessFile f = new RandomAccessFile(pages.toFile(), "rw")) {
      f.seek(at);
      f.writeByte(original);
    }
    cohort.cohort("restart", ckpt, "--detach").ok();
    assertEquals(0, cohort.await(job));
    assertTrue(cohort.log(job).endsWith("\n399\n"), cohort.log(job));
  }

  @Test
  void restartWithMissingManifestIsRefused() throws Exception {
    String ckpt = stoppedJob();
    String logBefore = cohort.log(ckpt.substring(0, ckpt.indexOf('.')));
    Files.delete(cohort.imageDir(ckpt).resolve("manifest.json"));
    assertFails(cohort.cohort("restart", ckpt), "manifest");
    assertNothingChanged(ckpt, logBefore);
  }

  @Test
  void restartWithTamperedManifestIsRefused() throws Exception {
    String ckpt = stoppedJob();
    String logBefore = cohort.log(ckpt.substring(0, ckpt.indexOf('.')));
    Path manifest = cohort.imageDir(ckpt).resolve("manifest.json");
    Files.writeString(
        manifest, Files.readString(manifest).replace("\"hostname\"", "\"hostname\" "));
    assertFails(cohort.cohort("restart", ckpt), "modified after the commit");
    assertNothingChanged(ckpt, logBefore);
  }

  @Test
  void checkpointOfExitedJobIsRefused() {
    String job = cohort.runDetached("sh", "-c", "echo done");
    assertEquals(0, cohort.await(job));
    assertFails(cohort.cohort("checkpoint", job), "not running (exited with status 0)");
    assertEquals(0, cohort.checkpoints(job).size());
    assertEquals("JOB_STATE_EXITED", cohort.state(job));
  }

  @Test
  void checkpointOfUnknownJob() {
    assertFails(cohort.cohort("checkpoint", "42"), "job 42 does not exist");
    assertFails(cohort.cohort("checkpoint", "4x2"), "is not a job id");
  }

  @Test
  void commandThatDoesNotExist() {
    CohortHarness.Result r = cohort.cohort("run", "--", "/no/such/program", "arg");
    assertFails(r, "/no/such/program");
    assertTrue(r.err().contains("No such file") || r.err().contains("not found"), r.err());
    assertEquals("[]", cohort.cohort("ps", "--json").ok().out().strip(), "no job was created");
    assertFails(cohort.cohort("run", "--", "no-such-command-anywhere"), "command not found");
    assertEquals("[]", cohort.cohort("ps", "--json").ok().out().strip());
  }

  /**
   * A vhost has its own /tmp and /dev/shm: a job started from there, or whose program lies there,
   * is refused before anything is created, saying why and what to do.
   */
  @Test
  void runFromWhereTheVhostCannotSeeIsRefusedBeforeAnythingIsCreated() throws Exception {
    Path dir = Files.createTempDirectory(Path.of("/tmp"), "cohort-badinput");
    Path prog = dir.resolve("hello.sh");
    Files.writeString(prog, "#!/bin/sh\necho hello\n");
    assertTrue(prog.toFile().setExecutable(true));
    try {
      CohortHarness.Result r = cohort.cohortIn(dir, Duration.ofMinutes(1), "run", "--", "true");
      assertFails(r, "the working directory " + dir + " is under /tmp");
      assertTrue(r.err().contains("Run it from a directory outside"), r.err());
      assertFails(
          cohort.cohort("run", "--", prog.toString()), "the program " + prog + " is under /tmp");
      assertFails(
          cohort.cohort("run", "--detach", "--", "mpirun", "-np", "1", prog.toString()),
          "the program " + prog + " is under /tmp");
      cohort.extraEnv.put("PATH", dir + ":" + System.getenv("PATH"));
      assertFails(cohort.cohort("run", "--", "hello.sh"), "(" + prog + ") is under /tmp");
      cohort.extraEnv.remove("PATH");

      assertEquals("[]", cohort.cohort("ps", "--json").ok().out().strip(), "no job was created");
      Path vhosts = cohort.home.resolve("agent/vhosts");
      if (Files.exists(vhosts)) {
        try (Stream<Path> s = Files.list(vhosts)) {
          assertEquals(List.of(), s.toList(), "no vhost was created");
        }
      }
      // The same program from a directory the vhost sees runs.
      Path visible = cohort.home.resolve("visible");
      Files.createDirectories(visible);
      Files.copy(prog, visible.resolve("hello.sh"));
      assertTrue(visible.resolve("hello.sh").toFile().setExecutable(true));
      CohortHarness.Result ok =
          cohort.cohortIn(visible, Duration.ofMinutes(1), "run", "--", "./hello.sh");
      assertEquals(0, ok.rc(), ok.toString());
      assertEquals("hello\n", ok.out());
    } finally {
      Files.deleteIfExists(prog);
      Files.deleteIfExists(dir);
    }
  }

  @Test
  void restartWhileRunningNeedsReplace() throws Exception {
    String job = cohort.runDetached(COUNTER);
    cohort.awaitOutput(job, "\n10\n", Duration.ofSeconds(30));
    String ckpt = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    long pid =
        cohort.job(job).getAsJsonArray("vhosts").get(0).getAsJsonObject().get("pid").getAsLong();

    assertFails(cohort.cohort("restart", ckpt), "is running");
    assertEquals("JOB_STATE_RUNNING", cohort.state(job));
    assertTrue(
        ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false),
        "the running incarnation must be untouched");

    cohort.cohort("restart", ckpt, "--replace", "--detach").ok();
    assertTrue(
        !ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)
            || ProcessHandle.of(pid).flatMap(h -> h.info().command()).isEmpty(),
        "--replace ends the old incarnation");
    assertEquals(0, cohort.await(job));
    assertTrue(cohort.log(job).endsWith("\n399\n"));
    assertEquals(2, cohort.job(job).get("incarnation").getAsInt());
  }

  @Test
  void removedCheckpointIsGoneAndOthersStay() throws Exception {
    String job = cohort.runDetached(COUNTER);
    cohort.awaitOutput(job, "\n10\n", Duration.ofSeconds(30));
    String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    String second = cohort.checkpoint(job, true).get("checkpoint").getAsString();
    cohort.cohort("rm", first).ok();
    assertEquals(1, cohort.checkpoints(job).size());
    assertTrue(!Files.exists(cohort.imageDir(first)), "images removed");
    assertFails(cohort.cohort("restart", first), "does not exist");
    assertFails(cohort.cohort("rm", first), "does not exist");
    cohort.cohort("restart", second, "--detach").ok();
    assertEquals(0, cohort.await(job));
  }

  /**
   * A file the job wrote that was deleted or replaced after the checkpoint: the restart (with
   * --replace, of a running job) is refused before anything changes, naming the file; the running
   * job is not killed.
   */
  @Test
  void restartRefusedWhenAFileTheJobWroteWasDeletedOrReplaced() throws Exception {
    Path dir = Files.createDirectories(cohort.home.resolve("files"));
    String job = cohort.runDetached(FilesRollbackIT.writer(dir, 2000, 40));
    cohort.awaitOutput(job, "step 10\n", Duration.ofSeconds(60));
    String ckpt = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    cohort.awaitOutput(job, "step 20\n", Duration.ofSeconds(60));

    Path out = dir.resolve("out-1.txt");
    Files.delete(out);
    CohortHarness.Result deleted = cohort.cohort("restart", ckpt, "--replace");
    assertFails(deleted, out + " was deleted");
    assertEquals("JOB_STATE_RUNNING", cohort.state(job));

    Path log = dir.resolve("log-0.txt");
    Path copy = dir.resolve("log-0.copy");
    Files.copy(log, copy);
    Files.move(copy, log, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    CohortHarness.Result replaced = cohort.cohort("restart", ckpt, "--replace");
    assertFails(replaced, log + " was replaced by another file");
    assertEquals("JOB_STATE_RUNNING", cohort.state(job));
    assertEquals(1, cohort.checkpoints(job).size());
    cohort.cohort("kill", job).ok();
  }
}
