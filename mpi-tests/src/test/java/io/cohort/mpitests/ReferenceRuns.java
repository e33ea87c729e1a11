package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** What a job prints when nothing interrupts it, and how a test compares a job's output with it. */
final class ReferenceRuns {
  private ReferenceRuns() {}

  /** The output of the same program run with plain mpirun, outside Cohort. */
  static String reference(String... command) throws IOException, InterruptedException {
    String[] cmd = command.clone();
    // Run without the delay: the output does not depend on it.
    cmd[cmd.length - 1] = "0";
    return plainMpirun(cmd);
  }

  /** The output of {@code command} (an mpirun command line) run as it is, outside Cohort. */
  static String plainMpirun(String... command) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of(command));
    cmd.add(1, "--allow-run-as-root");
    cmd.add(2, "--oversubscribe");
    Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), "reference run failed: " + cmd);
    return out;
  }

  /**
   * Asserts that a job's output is that of an uninterrupted run ({@link #reference}). A difference
   * is told precisely: the first line that differs, and the lines that came twice (output written
   * on after a log that was not rolled back to the checkpoint, or was put back under the restored
   * job) or never (output the restart lost).
   */
  static void assertSameOutput(String expected, String actual, String what) {
    if (expected.equals(actual)) {
      return;
    }
    List<String> want = expected.lines().toList();
    List<String> got = actual.lines().toList();
    int i = 0;
    while (i < want.size() && i < got.size() && want.get(i).equals(got.get(i))) {
      i++;
    }
    Map<String, Integer> count = new java.util.TreeMap<>();
    want.forEach(l -> count.merge(l, -1, Integer::sum));
    got.forEach(l -> count.merge(l, 1, Integer::sum));
    List<String> twice =
        count.entrySet().stream().filter(e -> e.getValue() > 0).map(Map.Entry::getKey).toList();
    List<String> never =
        count.entrySet().stream().filter(e -> e.getValue() < 0).map(Map.Entry::getKey).toList();
    fail(
        String.format(
            "%s: the output differs from an uninterrupted run's (%d lines, got %d). First "
                + "difference at line %d: expected %s, got %s. Lines that came more often than in "
                + "the uninterrupted run (%d): %s. Lines missing (%d): %s.%nOutput:%n%s",
            what,
            want.size(),
            got.size(),
            i + 1,
            i < want.size() ? "'" + want.get(i) + "'" : "the end",
            i < got.size() ? "'" + got.get(i) + "'" : "the end",
            twice.size(),
            abbreviate(twice),
            never.size(),
            abbreviate(never),
            actual));
  }

  private static String abbreviate(List<String> lines) {
    return lines.isEmpty()
        ? "none"
        : lines.size() <= 3
            ? lines.toString()
            : lines.subList(0, 3) + " and " + (lines.size() - 3) + " more";
  }
}
