package io.cohort.agent;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * One CRIU dump of one vhost, from freeze to resume. CRIU's post-dump action script and this
 * class talk through two FIFOs in {@code hookDir}: {@code event} (script to agent: "dumped
 * SIZE") and {@code decision} (agent to script: "commit" or "abort"). The agent holds both
 * FIFOs open read-write for the whole session, so neither side ever blocks in open() and no
 * message is lost if one side is early; when CRIU exits without reaching the hook, the
 * watcher writes "criu-exited" into {@code event} to wake the reader.
 */
final class DumpSession implements AutoCloseable {
  private final RandomAccessFile event;
  private final RandomAccessFile decision;
  private final Process criu;
  private final long startNanos;
  private final CompletableFuture<Integer> exit;
  private volatile long dumpedNanos;
  private volatile long exitNanos;

  private DumpSession(RandomAccessFile event, RandomAccessFile decision, Process criu, long t0) {
    this.event = event;
    this.decision = decision;
    this.criu = criu;
    this.startNanos = t0;
    this.exit = criu.onExit().thenApply(p -> {
      exitNanos = System.nanoTime();
      try {
        synchronized (this.event) {
          this.event.write("criu-exited\n".getBytes(StandardCharsets.US_ASCII));
        }
      } catch (IOException ignored) {
        // closed: nobody is waiting any more
      }
      return p.exitValue();
    });
  }

  /** Creates the FIFOs and starts CRIU; {@code launch} starts the dump given the hook dir. */
  static DumpSession start(Path hookDir, CriuLauncher launch) throws IOException {
    Path ev = hookDir.resolve("event");
    Path dec = hookDir.resolve("decision");
    mkfifo(ev);
    mkfifo(dec);
    RandomAccessFile event = new RandomAccessFile(ev.toFile(), "rw");
    RandomAccessFile decision = new RandomAccessFile(dec.toFile(), "rw");
    long t0 = System.nanoTime();
    try {
      return new DumpSession(event, decision, launch.start(), t0);
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
   * Waits until CRIU has written the images and is holding the tasks frozen. Returns the
   * size of the job's output log at that instant, or -1 when CRIU ended before that (it failed).
   */
  long awaitDumped() throws IOException {
    String line = event.readLine();
    dumpedNanos = System.nanoTime();
    if (line != null && line.startsWith("dumped ")) {
      return Long.parseLong(line.substring(7).trim());
    }
    return -1;
  }

  /** Milliseconds from CRIU's start to the images being written. */
  long millisToDumped() {
    return (dumpedNanos - startNanos) / 1_000_000;
  }

  /** Tells the held hook what to do; commit resumes (or kills, for --stop), abort resumes. */
  void decide(boolean commit) throws IOException {
    decision.write((commit ? "commit\n" : "abort\n").getBytes(StandardCharsets.US_ASCII));
  }

  /** Waits for CRIU to exit; returns its exit code, or empty on timeout. */
  Integer awaitExit(long timeoutMillis) throws InterruptedException {
    try {
      return exit.get(timeoutMillis, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.TimeoutException e) {
      return null;
    } catch (java.util.concurrent.ExecutionException e) {
      throw new IllegalStateException(e.getCause());
    }
  }

  /** Waits (bounded) for CRIU to exit after a decision; null if it did not. */
  Integer awaitExitQuietly() {
    try {
      return awaitExit(60_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  /**
   * How long the tasks stayed frozen: CRIU freezes them right after it starts and lets them go
   * just before it exits, so this is the span of the CRIU process (an upper bound by CRIU's
   * start-up time, a few milliseconds).
   */
  long frozenMillis() {
    long end = exitNanos != 0 ? exitNanos : System.nanoTime();
    return (end - startNanos) / 1_000_000;
  }

  boolean criuRunning() {
    return criu.isAlive();
  }

  void killCriu() {
    criu.destroyForcibly();
  }

  long startNanos() {
    return startNanos;
  }

  @Override
  public void close() {
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
    java.nio.file.Files.deleteIfExists(p);
    if (LibC.INSTANCE.mkfifo(p.toString(), 0600) != 0) {
      throw new IOException("mkfifo " + p + " failed (errno " + com.sun.jna.Native.getLastError() + ")");
    }
  }
}
