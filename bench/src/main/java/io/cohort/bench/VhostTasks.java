package io.cohort.bench;

import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.stream.Stream;

/**
 * The processes of a vhost on a node of the emulated cluster, as the kernel shows them: whether any
 * is still frozen. A vhost is a pid namespace; its init's host pid is in the agent's record of it.
 */
final class VhostTasks {
  private VhostTasks() {}

  /** The host pid of {@code vhost}'s init on {@code node}, from the record its agent keeps. */
  static long init(Cli cli, String node, String vhost) {
    Path record = cli.home.resolve("cluster/nodes/" + node + "/vhosts/" + vhost + "/record.json");
    try {
      return JsonParser.parseString(Files.readString(record))
          .getAsJsonObject()
          .get("pid")
          .getAsLong();
    } catch (IOException e) {
      throw new IllegalStateException("no record of vhost " + vhost + " at " + record, e);
    }
  }

  static boolean alive(long pid) {
    return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
  }

  /**
   * The tasks (threads included) under {@code init} that are stopped (T: CRIU's freeze, or a
   * SIGSTOP) or held by a tracer (t: CRIU seizes every task it dumps), as "pid: state"; none if the
   * vhost runs. Read from /proc, walking the children of every task.
   */
  static List<String> stopped(long init) {
    List<String> held = new ArrayList<>();
    Deque<Long> todo = new ArrayDeque<>(List.of(init));
    while (!todo.isEmpty()) {
      long pid = todo.pop();
      for (Path task : tasks(pid)) {
        String state = state(task.resolve("status"));
        if (state.startsWith("T") || state.startsWith("t")) {
          held.add(task.getFileName() + ": " + state);
        }
        for (String child : read(task.resolve("children")).trim().split("\\s+")) {
          if (!child.isEmpty()) {
            todo.push(Long.parseLong(child));
          }
        }
      }
    }
    return held;
  }

  private static List<Path> tasks(long pid) {
    try (Stream<Path> s = Files.list(Path.of("/proc/" + pid + "/task"))) {
      return s.toList();
    } catch (IOException gone) {
      return List.of(); // it ended meanwhile
    }
  }

  /** The value of the "State:" line of a status file ("S (sleeping)"), or "" if it is gone. */
  private static String state(Path status) {
    return read(status)
        .lines()
        .filter(l -> l.startsWith("State:"))
        .map(l -> l.substring(6).strip())
        .findFirst()
        .orElse("");
  }

  private static String read(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException gone) {
      return "";
    }
  }
}
