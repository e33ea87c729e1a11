package io.cohort.cli;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

/**
 * The plain forms of the commands that only read (ps, checkpoints, nodes, logs), parsed without
 * picocli. Picocli builds its model of a command by reflection, and that was a third of a `cohort
 * ps` (0.11 of 0.35 s, more than the answer itself). Only exactly the options below are taken, each
 * at most once, with a value that picocli would read the same way; anything else (help, a typo, an
 * abbreviation, an argument file, "--", a value that starts with '-') is left to picocli, so its
 * rules and messages stay the only ones. QuickParseTest holds this to what picocli makes of the
 * same lines.
 */
final class QuickParse {
  private QuickParse() {}

  /** The command {@code args} name with its fields set as picocli would, or null. */
  static Callable<Integer> parse(String[] args) {
    if (args.length == 0) {
      return null;
    }
    String command = args[0];
    Set<String> allowed =
        switch (command) {
          case "ps", "nodes", "checkpoints" -> Set.of("--json", "--coordinator");
          case "logs" -> Set.of("--follow", "--coordinator");
          default -> null;
        };
    if (allowed == null) {
      return null;
    }
    Set<String> seen = new HashSet<>();
    List<String> positional = new ArrayList<>();
    String coordinator = null;
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      if (a.isEmpty() || a.startsWith("@")) {
        return null; // an argument file, or a value picocli may read otherwise
      }
      if (!a.startsWith("-")) {
        positional.add(a);
        continue;
      }
      String name =
          a.equals("-f") ? "--follow" : a.startsWith("--coordinator=") ? "--coordinator" : a;
      if (!allowed.contains(name) || !seen.add(name)) {
        return null;
      }
      if (name.equals("--coordinator")) {
        coordinator =
            a.contains("=")
                ? a.substring(a.indexOf('=') + 1)
                : i + 1 < args.length ? args[++i] : null;
        if (coordinator == null
            || coordinator.isEmpty()
            || coordinator.startsWith("-")
            || coordinator.startsWith("@")) {
          return null;
        }
      }
    }
    boolean json = seen.contains("--json");
    return switch (command) {
      case "ps" -> {
        PsCommand c = new PsCommand();
        c.json = json;
        c.connection.coordinator = coordinator;
        yield positional.isEmpty() ? c : null;
      }
      case "nodes" -> {
        NodesCommand c = new NodesCommand();
        c.json = json;
        c.connection.coordinator = coordinator;
        yield positional.isEmpty() ? c : null;
      }
      case "checkpoints" -> {
        CheckpointsCommand c = new CheckpointsCommand();
        c.json = json;
        c.connection.coordinator = coordinator;
        if (positional.size() == 1) {
          c.job = positional.get(0);
        }
        yield positional.size() <= 1 ? c : null;
      }
      default -> { // logs
        LogsCommand c = new LogsCommand();
        c.follow = seen.contains("--follow");
        c.connection.coordinator = coordinator;
        c.job = positional.size() == 1 ? positional.get(0) : null;
        yield positional.size() == 1 ? c : null;
      }
    };
  }
}
