package io.cohort.agent;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tasks of a vhost left stopped by a dump that nobody finished: a CRIU that died while it held
 * them can leave them in state T (stopped), which nothing else would ever continue. A starting
 * agent wakes them with SIGCONT. A task in state t (traced) is still held by a live tracer: a CRIU
 * left by the previous agent, whose hook lets it go within a second of that agent's death; it is
 * only logged.
 *
 * <p>The vhost's tasks are its init and its descendants (every process of a vhost is in its init's
 * tree: orphans are re-parented to it), found through {@code /proc/PID/task/TID/children}.
 */
final class StoppedTasks {
  private static final Logger log = LoggerFactory.getLogger(StoppedTasks.class);
  private static final int SIGCONT = 18;

  private StoppedTasks() {}

  /** Sends SIGCONT to every task of the tree under {@code init} in state T; returns their pids. */
  static List<Long> resume(ProcessIdentity init, String who) {
    List<Long> continued = new ArrayList<>();
    if (!init.isAlive()) {
      return continued;
    }
    for (long pid : tree(init.pid())) {
      String status = read(Path.of("/proc", Long.toString(pid), "status"));
      char state = field(status, "State:").isEmpty() ? '?' : field(status, "State:").charAt(0);
      if (state == 'T') {
        if (LibC.INSTANCE.kill((int) pid, SIGCONT) == 0) {
          continued.add(pid);
        }
      } else if (state == 't') {
        log.warn(
            "{}: task {} is held by tracer {} (a CRIU left by the previous agent lets it go "
                + "within a second)",
            who,
            pid,
            field(status, "TracerPid:"));
      }
    }
    if (!continued.isEmpty()) {
      log.warn(
          "{}: tasks {} were left stopped (a dump nobody finished): continued", who, continued);
    }
    return continued;
  }

  /** {@code root} and its descendants, parents first. */
  private static List<Long> tree(long root) {
    List<Long> out = new ArrayList<>();
    Deque<Long> todo = new ArrayDeque<>(List.of(root));
    while (!todo.isEmpty() && out.size() < 100_000) {
      long pid = todo.pop();
      out.add(pid);
      Path tasks = Path.of("/proc", Long.toString(pid), "task");
      try (var s = Files.list(tasks)) {
        for (Path t : s.toList()) {
          for (String child : read(t.resolve("children")).trim().split("\\s+")) {
            if (!child.isEmpty()) {
              todo.push(Long.parseLong(child));
            }
          }
        }
      } catch (IOException | RuntimeException gone) {
        // the process ended meanwhile
      }
    }
    return out;
  }

  private static String field(String status, String name) {
    for (String line : status.split("\n")) {
      if (line.startsWith(name)) {
        return line.substring(name.length()).trim();
      }
    }
    return "";
  }

  private static String read(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException e) {
      return "";
    }
  }
}
