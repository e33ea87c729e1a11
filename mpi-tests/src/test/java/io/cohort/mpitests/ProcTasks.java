package io.cohort.mpitests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.stream.Stream;

/** The tasks of a vhost as /proc shows them. */
final class ProcTasks {
  private ProcTasks() {}

  /** The tasks of the vhost under {@code init} that are stopped (T) or held by a tracer (t). */
  static List<String> stoppedTasks(long init) {
    List<String> held = new ArrayList<>();
    for (long pid : tree(init)) {
      for (String line : status(pid).split("\n")) {
        if (line.startsWith("State:") && (line.contains("T (") || line.contains("t ("))) {
          held.add(pid + ":" + line.substring(6).trim());
        }
      }
    }
    return held;
  }

  /** {@code init} and every process below it, parents before children. */
  static List<Long> tree(long init) {
    List<Long> out = new ArrayList<>();
    Deque<Long> todo = new ArrayDeque<>(List.of(init));
    while (!todo.isEmpty()) {
      long pid = todo.pop();
      out.add(pid);
      try (Stream<Path> tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
        for (Path t : tasks.toList()) {
          for (String c : readOrEmpty(t.resolve("children")).trim().split("\\s+")) {
            if (!c.isEmpty()) {
              todo.push(Long.parseLong(c));
            }
          }
        }
      } catch (IOException gone) {
        // the process ended meanwhile
      }
    }
    return out;
  }

  /** /proc/PID/status, or "" once the process has ended. */
  static String status(long pid) {
    return readOrEmpty(Path.of("/proc/" + pid + "/status"));
  }

  /** The file's text, or "" if it cannot be read (a process that ended). */
  static String readOrEmpty(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException e) {
      return "";
    }
  }
}
