package io.cohort.agent;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One CRIU dump of one vhost, from freeze to release. CRIU's action script and this class talk
 * through two FIFOs in {@code hookDir}: {@code event} (script to agent: "locked" when the tasks are
 * frozen and CRIU is about to lock the network, "dumped SIZE" when the image is written) and {@code
 * decision} (agent to script: "go" after "locked", then "commit" or "abort"). The agent holds both
 * FIFOs open read-write for the whole session, so neither side ever blocks in open() and no message
 * is lost if one side is early. The reader of {@code event} is always woken: by the hook, by
 * "criu-exited" when CRIU ends without reaching the hook, or by "criu-timeout".
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

  private final RandomAccessFile event;
  private final RandomAccessFile decision;
  private final Process criu;
  private final long startNanos;
  private final CompletableFuture<Integer> exit;
  private volatile long dumpedNanos;
  private volatile long exitNanos;

  private DumpSession(
      RandomAccessFile event, RandomAccessFile decision, Process criu, long t0, Duration timeout) {
    this.event = event;
    this.decision = decision;
    this.criu = criu;
    this.startNanos = t0;
    this.exit =
        criu.onExit()
            .thenApply(
                p -> {
                  exitNanos = System.nanoTime();
                  wake("criu-exited");
                  return p.exitValue();
                });
    CompletableFuture.delayedExecutor(timeout.toMillis(), TimeUnit.MILLISECONDS)
        .execute(
            () -> {
              if (dumpedNanos == 0 && criu.isAlive()) {
                wake("criu-timeout");
              }
            });
  }

  /** Creates the FIFOs and starts CRIU; {@code launch} starts the dump. */
  static DumpSession start(Path hookDir, Duration timeout, CriuLauncher launch) throws IOException {
    Path ev = hookDir.resolve("event");
    Path dec = hookDir.resolve("decision");
    mkfifo(ev);
    mkfifo(dec);
    RandomAccessFile event = new RandomAccessFile(ev.toFile(), "rw");
    RandomAccessFile decision = new RandomAccessFile(dec.toFile(), "rw");
    long t0 = System.nanoTime();
    try {
      return new DumpSession(event, decision, launch.start(), t0, timeout);
    } catch (IOException | RuntimeException e) {
      event.close();
      decision.close();
      throw e;
    }
  }

  /** Starts CRIU. */
  @FunctionalInterface
  interface CriuLauncher {
    Process start() throws IOException;
  }

  /**
   * Waits until CRIU holds the tasks frozen with the image written, or fails, or times out. When
   * the tasks are frozen and CRIU is about to lock their network, runs {@code onNetworkLock} and
   * lets CRIU go on; if it throws, CRIU is told to give up (the tasks carry on) and the exception
   * is thrown.
   */
  Dumped awaitDumped(Runnable onNetworkLock) throws IOException {
    String line = event.readLine();
    while ("locked".equals(line)) {
      try {
        onNetworkLock.run();
      } catch (RuntimeException e) {
        decide(false);
        throw e;
      }
      decision.write("go\n".getBytes(StandardCharsets.US_ASCII));
      line = event.readLine();
    }
    dumpedNanos = System.nanoTime();
    if (line != null && line.startsWith("dumped ")) {
      return new Dumped(Outcome.DUMPED, Long.parseLong(line.substring(7).trim()));
    }
    if ("criu-timeout".equals(line)) {
      return new Dumped(Outcome.TIMED_OUT, -1);
    }
    return new Dumped(Outcome.CRIU_EXITED, -1);
  }

  /** Milliseconds from CRIU's start to the images being written. */
  long millisToDumped() {
    return (dumpedNanos - startNanos) / 1_000_000;
  }

  /** Tells the held hook what to do; commit resumes (or kills, for --stop), abort resumes. */
  void decide(boolean commit) throws IOException {
    decision.write((commit ? "commit\n" : "abort\n").getBytes(StandardCharsets.US_ASCII));
  }

  /** Waits for CRIU to exit; returns its exit code, or null on timeout. */
  Integer awaitExit(Duration timeout) {
    try {
      return exit.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    } catch (ExecutionException e) {
      throw new IllegalStateException(e.getCause());
    }
  }

  /**
   * How long the tasks stayed frozen, from the CRIU process's span (an upper bound by CRIU's
   * start-up time); {@link CriuLog#frozenMillis} gives the exact figure when CRIU logged it.
   */
  long frozenMillis() {
    long end = exitNanos != 0 ? exitNanos : System.nanoTime();
    return (end - startNanos) / 1_000_000;
  }

  /** Last resort when CRIU does not exit: its tasks may be left with CRIU's network lock. */
  void killCriu() {
    criu.destroyForcibly();
  }

  private void wake(String message) {
    try {
      synchronized (event) {
        event.write((message + "\n").getBytes(StandardCharsets.US_ASCII));
      }
    } catch (IOException ignored) {
      // closed: nobody is waiting any more
    }
  }

  /** Closes the FIFOs once CRIU has exited (so a reader blocked on them is woken first). */
  @Override
  public void close() {
    if (criu.isAlive()) {
      awaitExit(Duration.ofSeconds(30));
    }
    try {
      event.close();
    } catch (IOException ignored) {
      // best effort
    }
    try {
      decision.close();
    } catch (IOException ignored) {
      // best effort
    }
  }

  private static void mkfifo(Path p) throws IOException {
    Files.deleteIfExists(p);
    if (LibC.INSTANCE.mkfifo(p.toString(), 0600) != 0) {
      throw new IOException("mkfifo " + p + " failed");
    }
  }
}
