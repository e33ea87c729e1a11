package io.cohort.agent;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * One CRIU dump of one vhost, from freeze to release, over a {@link CriuSession}. The script says
 * "locked" when the tasks are frozen and CRIU is about to lock the network, "dumped SIZE" when the
 * image is written; the agent answers "go" after "locked", then "commit" or "abort".
 */
final class DumpSession implements AutoCloseable {
  /** What {@link #awaitDumped} saw. */
  enum Outcome {
    /** CRIU wrote the image and holds the tasks frozen. */
    DUMPED,
    /** CRIU ended without reaching the hook: the dump failed. */
    CRIU_EXITED,
    /** CRIU took longer than the CRIU timeout. */
    TIMED_OUT
  }

  /**
   * @param outcome what happened
   * @param logSize size of the job's output log at the dump, or -1 if the hook could not read it
   */
  record Dumped(Outcome outcome, long logSize) {}

  private final CriuSession criu;

  private DumpSession(CriuSession criu) {
    this.criu = criu;
  }

  /** Creates the FIFOs and starts CRIU; {@code launch} starts the dump. */
  static DumpSession start(Path hookDir, Duration timeout, CriuSession.CriuLauncher launch)
      throws IOException {
    return new DumpSession(CriuSession.start(hookDir, timeout, launch));
  }

  /**
   * Waits until CRIU holds the tasks frozen with the image written, or fails, or times out. When
   * the tasks are frozen and CRIU is about to lock their network, runs {@code onNetworkLock} and
   * lets CRIU go on; if it throws, CRIU is told to give up (the tasks carry on) and the exception
   * is thrown.
   */
  Dumped awaitDumped(Runnable onNetworkLock) throws IOException {
    String line = criu.next();
    while ("locked".equals(line)) {
      try {
        onNetworkLock.run();
      } catch (RuntimeException e) {
        decide(false);
        throw e;
      }
      criu.answer("go");
      line = criu.next();
    }
    criu.reached();
    if (line != null && line.startsWith("dumped ")) {
      return new Dumped(Outcome.DUMPED, Long.parseLong(line.substring(7).trim()));
    }
    if (CriuSession.TIMED_OUT.equals(line)) {
      return new Dumped(Outcome.TIMED_OUT, -1);
    }
    return new Dumped(Outcome.CRIU_EXITED, -1);
  }

  /** Milliseconds from CRIU's start to the images being written. */
  long millisToDumped() {
    return criu.millisToReached();
  }

  /** Tells the held hook what to do; commit resumes (or kills, for --stop), abort resumes. */
  void decide(boolean commit) throws IOException {
    criu.answer(commit ? "commit" : "abort");
  }

  /** Waits for CRIU to exit; returns its exit code, or null on timeout. */
  Integer awaitExit(Duration timeout) {
    return criu.awaitExit(timeout);
  }

  /**
   * How long the tasks stayed frozen, from the CRIU process's span (an upper bound by CRIU's
   * start-up time); {@link CriuLog#frozenMillis} gives the exact figure when CRIU logged it.
   */
  long frozenMillis() {
    return criu.millisToExit();
  }

  /** Last resort when CRIU does not exit: its tasks may be left with CRIU's network lock. */
  void killCriu() {
    criu.killCriu();
  }

  @Override
  public void close() {
    criu.close();
  }
}
