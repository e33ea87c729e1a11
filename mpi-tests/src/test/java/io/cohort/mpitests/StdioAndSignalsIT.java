package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * What a user of plain mpirun carries over, with real Open MPI and real CRIU: a program that reads
 * its input deck from stdin (`cohort run ... < deck`, mpirun passes it on to rank 0), a stderr kept
 * apart from stdout, and signals sent to the job. The program is mpi-tests/src/main/c/deck.c.
 */
class StdioAndSignalsIT {
  private static final Duration START = Duration.ofSeconds(90);
  private static final int RANKS = 2;

  /** What plain mpirun prints for a deck, stdout and stderr apart. */
  private record Output(String out, String err) {}

  /** A deck of {@code blocks} blocks: steps, a warning on stderr, a pause, a line on stdout. */
  private static Path deck(Path dir, int blocks, int steps) throws IOException {
    StringBuilder d = new StringBuilder("# an input deck, read by rank 0 from stdin\n");
    for (int i = 1; i <= blocks; i++) {
      d.append("steps ").append(steps).append('\n');
      d.append("warn block ").append(i).append('\n');
      d.append("pause 100\n");
      d.append("say block ").append(i).append(" done\n");
    }
    Path f = dir.resolve("deck-" + blocks + "x" + steps + ".in");
    Files.writeString(f, d);
    return f;
  }

  private static String[] command(long delayMs) {
    return new String[] {
      "mpirun",
      "-np",
      Integer.toString(RANKS),
      CohortHarness.DECK.toString(),
      Long.toString(delayMs)
    };
  }

  /** The same program and deck under plain mpirun, uninterrupted and without the delay. */
  private static Output reference(Path deck) throws Exception {
    Path out = Files.createTempFile(deck.getParent(), "ref", ".out");
    Path err = Files.createTempFile(deck.getParent(), "ref", ".err");
    Process p =
        new ProcessBuilder(
                "mpirun",
                "--allow-run-as-root",
                "--oversubscribe",
                "-np",
                Integer.toString(RANKS),
                CohortHarness.DECK.toString(),
                "0")
            .redirectInput(deck.toFile())
            .redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .start();
    assertEquals(0, p.waitFor(), "reference run failed: " + Files.readString(err));
    return new Output(Files.readString(out), Files.readString(err));
  }

  private static String[] concat(String[] a, String... b) {
    return Stream.concat(Stream.of(a), Stream.of(b)).toArray(String[]::new);
  }

  @Test
  void attachedRunReadsStdinAndKeepsStderrApartAttachedAndInLogs() throws Exception {
    try (CohortHarness cohort = new CohortHarness("stdio")) {
      Path deck = deck(cohort.home, 6, 3);
      Output expected = reference(deck);
      assertTrue(expected.err.contains("warning: block 6"), expected.err);

      CohortHarness.Result r =
          cohort.cohortWithInput(deck, concat(new String[] {"run", "--"}, command(100)));
      assertEquals(0, r.rc(), r.err());
      assertEquals(expected.out, r.out(), "attached: the job's stdout on stdout, and only it");
      assertTrue(
          r.err().contains(expected.err), "attached: the job's stderr on stderr:\n" + r.err());
      String job = jobId(r.err());

      assertEquals(expected.out, cohort.cohort("logs", "--stdout", job).ok().out());
      assertEquals(expected.err, cohort.cohort("logs", "--stderr", job).ok().out());
      // Both, interleaved as written: each warning after the steps before it and before the line
      // that follows it in the deck (a pause keeps them apart in time).
      String both = cohort.logBoth(job);
      for (int i = 1; i <= 6; i++) {
        int warning = both.indexOf("warning: block " + i + "\n");
        assertTrue(warning > both.indexOf("step " + 3 * i + " "), both);
        assertTrue(warning < both.indexOf("block " + i + " done\n"), both);
      }
      assertEquals(expected.out.length() + expected.err.length(), both.length(), both);
    }
  }

  /**
   * The job is checkpointed while it reads its deck (A), later stopped by a checkpoint (B), and
   * restarted from A on another node, with the stdin file gone from the first node: the stdin goes
   * with the image, the restarted job reads on where A left it, and its stdout and stderr are both
   * rolled back to A, so the final output equals an uninterrupted run.
   */
  @Test
  void stdinReadMidwayRestartsOnAnotherNodeFromAnOlderCheckpoint() throws Exception {
    CohortHarness cohort = new CohortHarness("stdin-cluster");
    try {
      cohort.clusterUp(3, "cohortsd", "198.18.83");
      Path deck = deck(cohort.home, 60, 2);
      Output expected = reference(deck);
      String job =
          cohort
              .cohortWithInput(
                  deck,
                  concat(
                      new String[] {"run", "--detach", "--json", "--nodes", "n1", "--"},
                      command(150)))
              .ok()
              .json()
              .get("job")
              .getAsString();
      Path out = cohort.clusterLog("n1", job);
      Path vhostDir = out.getParent();
      CohortHarness.awaitFile(out, "block 5 done\n", START);
      String older = cohort.checkpoint(job, false).get("checkpoint").getAsString();
      CohortHarness.awaitFile(out, "block 12 done\n", START);
      String stopped = cohort.checkpoint(job, true).get("checkpoint").getAsString();
      assertEquals("JOB_STATE_STOPPED", cohort.state(job));
      String stderrAtStop = Files.readString(vhostDir.resolve("stderr.log"));
      assertTrue(stderrAtStop.contains("warning: block 12\n"), stderrAtStop);
      assertFalse(Files.readString(out).contains("result"), "stopped while reading its deck");

      // As if n2 were another machine: the job's stdin is not where the job reads it (the
      // emulated nodes share one file system); it comes back from the image.
      Files.delete(vhostDir.resolve("stdin"));
      JsonObject restart =
          cohort.cohort("restart", older, "--nodes", "n2", "--detach", "--json").ok().json();
      // The image came from n1: brought over now, or as the partner copy n2 already holds.
      String source =
          restart
              .getAsJsonArray("image_sources")
              .get(0)
              .getAsJsonObject()
              .get("copy")
              .getAsString();
      assertTrue(
          restart.get("transferred_bytes").getAsLong() > 0 || source.equals("partner copy on n2"),
          restart.toString());
      assertEquals(0, cohort.await(job), cohort.cohort("logs", job).out());

      assertEquals(expected.out, cohort.cohort("logs", "--stdout", job).ok().out());
      assertEquals(expected.err, cohort.cohort("logs", "--stderr", job).ok().out());
      assertTrue(Files.isRegularFile(vhostDir.resolve("stdin")), "stdin put back from the image");
      try (Stream<Path> kept = Files.list(vhostDir)) {
        List<String> names = kept.map(p -> p.getFileName().toString()).toList();
        assertTrue(
            names.stream().anyMatch(n -> n.startsWith("stderr.log.after-" + older + "-")),
            "what stderr got after " + older + " is kept beside it: " + names);
      }
      System.out.println(
          "stdin restart: checkpoints " + older + " and " + stopped + ", restart " + restart);
    } finally {
      cohort.closeCluster();
    }
  }

  /**
   * Signals: SIGUSR1 to an attached `cohort run` and `cohort kill --signal USR2` reach the ranks'
   * handlers (through mpirun) and leave the job running; SIGKILL, SIGSTOP and unknown names are
   * refused with a clear error; SIGTERM to the attached `cohort run` takes a checkpoint and stops
   * the job, which restarts and ends with the output of an uninterrupted run.
   */
  @Test
  void signalsReachTheRanksAndSigtermCheckpointsAndStops() throws Exception {
    try (CohortHarness cohort = new CohortHarness("signals")) {
      Path deck = deck(cohort.home, 80, 2);
      Output expected = reference(deck);
      Path out = cohort.home.resolve("attached.out");
      Path err = cohort.home.resolve("attached.err");
      Process run =
          cohort.start(
              deck,
              ProcessBuilder.Redirect.to(out.toFile()),
              ProcessBuilder.Redirect.to(err.toFile()),
              concat(new String[] {"run", "--"}, command(150)));
      try {
        CohortHarness.awaitFile(err, " started", START);
        String job = jobId(Files.readString(err));
        cohort.awaitOutput(job, "block 2 done\n", START);

        signal("USR1", run.pid());
        cohort.awaitOutput(job, "rank 0 got SIGUSR1\n", START);
        cohort.awaitOutput(job, "rank 1 got SIGUSR1\n", START);
        cohort.cohort("kill", "--signal", "USR2", job).ok();
        cohort.awaitOutput(job, "rank 0 got SIGUSR2\n", START);
        cohort.awaitOutput(job, "rank 1 got SIGUSR2\n", START);
        assertEquals("JOB_STATE_RUNNING", cohort.state(job));

        CohortHarness.Result kill = cohort.cohort("kill", "--signal", "KILL", job);
        assertEquals(1, kill.rc());
        assertTrue(kill.err().contains("`cohort kill JOB` ends it"), kill.err());
        CohortHarness.Result stop = cohort.cohort("kill", "--signal", "SIGSTOP", job);
        assertEquals(1, stop.rc());
        assertTrue(stop.err().contains("cohort checkpoint --stop"), stop.err());
        CohortHarness.Result bogus = cohort.cohort("kill", "--signal", "NOPE", job);
        assertEquals(1, bogus.rc());
        assertTrue(bogus.err().contains("USR1 (10)"), bogus.err());
        assertEquals("JOB_STATE_RUNNING", cohort.state(job));

        run.destroy(); // SIGTERM
        assertTrue(run.waitFor(5, TimeUnit.MINUTES), "SIGTERM ends the attached run");
        String said = Files.readString(err);
        assertEquals(75, run.exitValue(), said);
        assertTrue(said.contains("checkpoint " + job + ".1 committed"), said);
        assertEquals("JOB_STATE_STOPPED", cohort.state(job));
        assertFalse(cohort.readLog(job).contains("result"), "stopped mid-run");
        assertTrue(Files.readString(out).contains("rank 0 got SIGUSR1"), "attached stdout");

        cohort.cohort("restart", job, "--detach").ok();
        assertEquals(0, cohort.await(job));
        String stdout = cohort.cohort("logs", "--stdout", job).ok().out();
        assertEquals(expected.out, withoutSignalLines(stdout));
        // mpirun says on its stderr that it passed each signal on, as it does without Cohort.
        String stderr = cohort.cohort("logs", "--stderr", job).ok().out();
        assertTrue(stderr.contains("mpirun: Forwarding signal 10 to job\n"), stderr);
        assertTrue(stderr.contains("mpirun: Forwarding signal 12 to job\n"), stderr);
        assertEquals(expected.err, withoutSignalLines(stderr));
      } finally {
        run.destroyForcibly();
      }
    }
  }

  private static String jobId(String cliStderr) {
    Matcher m = Pattern.compile("cohort: job (\\d+) started").matcher(cliStderr);
    assertTrue(m.find(), cliStderr);
    return m.group(1);
  }

  private static String withoutSignalLines(String s) {
    return s.lines()
        .filter(l -> !l.matches("rank \\d+ got SIGUSR\\d|mpirun: Forwarding signal \\d+ to job"))
        .map(l -> l + "\n")
        .collect(Collectors.joining());
  }

  private static void signal(String name, long pid) throws Exception {
    Process p =
        new ProcessBuilder("kill", "-" + name, Long.toString(pid))
            .redirectErrorStream(true)
            .start();
    String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), text);
  }
}
