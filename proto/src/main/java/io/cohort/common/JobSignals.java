package io.cohort.common;

import java.util.Locale;
import java.util.Map;

/**
 * The signals a user may send to a job's command (`cohort kill --signal`): those a batch system or
 * a user sends to ask something of a running program, which the vhost's init forwards to the
 * command's process group and mpirun passes on to its ranks (SIGUSR1, SIGUSR2) or acts on itself.
 * SIGKILL is refused (`cohort kill` ends a job and records it), and so are SIGSTOP, SIGTSTP and
 * SIGCONT: a job stopped behind Cohort's back could not be checkpointed (CRIU would find it
 * stopped) and a frozen one must only be released by Cohort. Numbers are Linux's (x86 and arm).
 */
public final class JobSignals {
  private static final Map<String, Integer> ALLOWED =
      Map.of("HUP", 1, "INT", 2, "QUIT", 3, "USR1", 10, "USR2", 12, "ALRM", 14, "TERM", 15);
  private static final Map<String, Integer> REFUSED =
      Map.of("KILL", 9, "STOP", 19, "TSTP", 20, "CONT", 18);

  private JobSignals() {}

  /**
   * The number of a signal given by name ("USR1", "SIGUSR1", any case) or number; refuses any other
   * with an error that says which are allowed.
   */
  public static int parse(String signal) {
    String s = signal.strip().toUpperCase(Locale.ROOT);
    if (s.startsWith("SIG")) {
      s = s.substring(3);
    }
    Integer n = ALLOWED.get(s);
    if (n == null && s.matches("[0-9]{1,3}")) {
      n = Integer.parseInt(s);
    }
    return require(n == null ? REFUSED.getOrDefault(s, -1) : n, signal);
  }

  /** {@code number} if it may be sent to a job; else an error naming what to do instead. */
  public static int require(int number) {
    return require(number, Integer.toString(number));
  }

  private static int require(int number, String given) {
    if (ALLOWED.containsValue(number)) {
      return number;
    }
    if (number == 9) {
      throw CohortException.invalid(
          "SIGKILL is not sent to a job: `cohort kill JOB` ends it (and records that it was "
              + "killed)");
    }
    if (REFUSED.containsValue(number)) {
      throw CohortException.invalid(
          "signal %s would stop or continue the job behind Cohort's back: to pause a job, "
              + "`cohort checkpoint --stop JOB` and later `cohort restart JOB`",
          given);
    }
    throw CohortException.invalid(
        "unknown or refused signal '%s': use one of %s (name, SIGNAME or number)", given, names());
  }

  /** The signals allowed, in number order, for messages and help. */
  public static String names() {
    return ALLOWED.entrySet().stream()
        .sorted(Map.Entry.comparingByValue())
        .map(e -> e.getKey() + " (" + e.getValue() + ")")
        .reduce((a, b) -> a + ", " + b)
        .orElse("");
  }
}
