package io.cohort.agent;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;

/**
 * A vhost's processes as {@code /proc} shows them: its init and the init's descendants (every
 * process of a vhost is in that tree: an orphan is re-parented to the init, its pid namespace's
 * reaper), found through {@code /proc/PID/task/TID/children}. That reads only the tree's own files;
 * {@link ProcessHandle#descendants()} reads every process's of the node to find them.
 */
final class ProcTree {
  /** More processes than any vhost runs: a bound against a tree that changes under the walk. */
  private static final int MAX = 100_000;

  private ProcTree() {}

  /** {@code root} and its descendants, parents first; empty if {@code root} is gone. */
  static List<Long> of(long root) {
    List<Long> out = new ArrayList<>();
    if (!Files.isDirectory(dir(root))) {
      return out;
    }
    Deque<Long> todo = new ArrayDeque<>();
    todo.add(root);
    while (!todo.isEmpty() && out.size() < MAX) {
      long pid = todo.poll();
      out.add(pid);
      for (String tid : tasks(pid)) {
        String children = read(dir(pid).resolve("task").resolve(tid).resolve("children"));
        if (children != null) {
          for (long child : numbers(children, 0, children.length(), 0)) {
            todo.add(child);
          }
        }
      }
    }
    return out;
  }

  /** The thread ids of a process, as listed in {@code /proc/PID/task}; empty if it is gone. */
  static List<String> tasks(long pid) {
    String[] names = dir(pid).resolve("task").toFile().list();
    return names == null ? List.of() : List.of(names);
  }

  static Path dir(long pid) {
    return Path.of("/proc", Long.toString(pid));
  }

  /** A small {@code /proc} file's text, or null if its task is gone. */
  static String read(Path file) {
    try {
      return new String(Files.readAllBytes(file), StandardCharsets.ISO_8859_1);
    } catch (IOException gone) {
      return null;
    }
  }

  /**
   * The unsigned decimal numbers of {@code s[from, to)}, in order, at least {@code min} of them
   * (those missing are 0).
   */
  static long[] numbers(String s, int from, int to, int min) {
    long[] out = new long[Math.max(min, 4)];
    int n = 0;
    int i = from;
    while (i < to) {
      char c = s.charAt(i++);
      if (c < '0' || c > '9') {
        continue;
      }
      long v = c - '0';
      while (i < to && s.charAt(i) >= '0' && s.charAt(i) <= '9') {
        v = v * 10 + (s.charAt(i++) - '0');
      }
      if (n == out.length) {
        out = Arrays.copyOf(out, n * 2);
      }
      out[n++] = v;
    }
    return Arrays.copyOf(out, Math.max(n, min));
  }
}
