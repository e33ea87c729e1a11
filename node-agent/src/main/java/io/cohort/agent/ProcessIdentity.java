package io.cohort.agent;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A process named by its pid and its start time, so that a recycled pid is never mistaken for the
 * process we started.
 *
 * @param pid host pid
 * @param startTicks start time in clock ticks after boot (/proc/PID/stat field 22)
 */
public record ProcessIdentity(long pid, long startTicks) {

  /** The identity of a live (non-zombie) process, if there is one with this pid. */
  public static Optional<ProcessIdentity> of(long pid) {
    return stat(pid)
        .filter(s -> s.state != 'Z' && s.state != 'X')
        .map(s -> new ProcessIdentity(pid, s.startTicks));
  }

  /** True if this very process still runs (not a zombie, not a recycled pid). */
  public boolean isAlive() {
    return pid > 0 && of(pid).map(this::equals).orElse(false);
  }

  /** Sends SIGKILL if this is still the same process; returns whether a signal was sent. */
  public boolean kill() {
    return signal(9);
  }

  /** Sends {@code sig} if this is still the same process; returns whether it was sent. */
  boolean signal(int sig) {
    if (!isAlive()) {
      return false;
    }
    return LibC.INSTANCE.kill((int) pid, sig) == 0;
  }

  /** Waits until the process is gone (or a zombie); returns false on timeout. */
  public boolean awaitExit(long timeoutMillis) throws InterruptedException {
    long deadline = System.nanoTime() + timeoutMillis * 1_000_000;
    while (isAlive()) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      Thread.sleep(10);
    }
    return true;
  }

  private record Stat(char state, long startTicks) {}

  private static Optional<Stat> stat(long pid) {
    String text;
    try {
      text = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    } catch (IOException e) {
      return Optional.empty();
    }
    // "pid (comm) S ppid ..." — comm may contain spaces and parentheses: split after the last ')'.
    String[] f = text.substring(text.lastIndexOf(')') + 2).trim().split(" ");
    // f[0] is field 3 (state); field 22 (starttime) is f[19].
    return Optional.of(new Stat(f[0].charAt(0), Long.parseLong(f[19])));
  }
}
