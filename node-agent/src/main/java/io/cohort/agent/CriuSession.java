package io.cohort.agent;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One CRIU run whose action script waits for the agent at a hook. The script and the agent talk
 * through two FIFOs in {@code hookDir}: {@code event} (script to agent: where CRIU is) and {@code
 * decision} (agent to script: what to do). The agent holds both FIFOs open read-write for the whole
 * session, so neither side ever blocks in open() and no message is lost if one side is early. A
 * reader of {@code event} is always woken: by the hook, by "criu-exited" when CRIU ends without
 * reaching it, or by "criu-timeout" when CRIU takes longer than the CRIU timeout to reach it. What
 * the words mean is the caller's protocol ({@link DumpSession}, {@link RestoreHolds}).
 */
final class CriuSession implements AutoCloseable {
  static final String EXITED = "criu-exited";
  static final String TIMED_OUT = "criu-timeout";

  private final RandomAccessFile event;
  private final RandomAccessFile decision;
  private final Process criu;
  private final long startNanos;
  private final CompletableFuture<Integer> exit;
  private volatile long reachedNanos;
  private volatile long exitNanos;

  private CriuSession(
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
                  wake(EXITED);
                  return p.exitValue();
                });
    CompletableFuture.delayedExecutor(timeout.toMillis(), TimeUnit.MILLISECONDS)
        .execute(
            () -> {
              if (reachedNanos == 0 && criu.isAlive()) {
                wake(TIMED_OUT);
              }
            });
  }

  /**
   * How the action script knows the agent, {@code self}: by pid and start time, so that it stops
   * waiting when the agent is gone (and a recycled pid is not taken for it).
   */
  static Map<String, String> agentEnv(ProcessIdentity self) {
    return Map.of(
        "COHORT_AGENT_PID", Long.toString(self.pid()),
        "COHORT_AGENT_START", Long.toString(self.startTicks()));
  }

  /** Creates the FIFOs and starts CRIU with {@code launch}. */
  static CriuSession start(Path hookDir, Duration timeout, CriuLauncher launch) throws IOException {
    Files.createDirectories(hookDir);
    Path ev = hookDir.resolve("event");
    Path dec = hookDir.resolve("decision");
    mkfifo(ev);
    mkfifo(dec);
    RandomAccessFile event = new RandomAccessFile(ev.toFile(), "rw");
    RandomAccessFile decision = new RandomAccessFile(dec.toFile(), "rw");
    long t0 = System.nanoTime();
    try {
      return new CriuSession(event, decision, launch.start(), t0, timeout);
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

  /** The next word from the script (or {@link #EXITED}, {@link #TIMED_OUT}); blocks. */
  String next() throws IOException {
    return event.readLine();
  }

  /** CRIU reached the hook the caller waited for: the timeout no longer applies. */
  void reached() {
    reachedNanos = System.nanoTime();
  }

  /** Milliseconds from CRIU's start to {@link #reached}. */
  long millisToReached() {
    return (reachedNanos - startNanos) / 1_000_000;
  }

  /** Tells the waiting script what to do. */
  void answer(String word) throws IOException {
    decision.write((word + "\n").getBytes(StandardCharsets.US_ASCII));
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
   * Milliseconds from CRIU's start to its exit (or to now while it runs): an upper bound, by CRIU's
   * start-up time, of how long it held its tasks.
   */
  long millisToExit() {
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
