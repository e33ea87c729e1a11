package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** QuickParse takes a line only when picocli would read it, and reads it as picocli does. */
class QuickParseTest {
  /** Lines that must take the quick path. */
  private static final List<String> QUICK =
      List.of(
          "ps",
          "ps --json",
          "ps --coordinator 10.0.0.1:7000",
          "ps --coordinator=h:1 --json",
          "nodes",
          "nodes --json",
          "nodes --coordinator h:1",
          "checkpoints",
          "checkpoints 7",
          "checkpoints --json 7",
          "checkpoints 7 --json",
          "checkpoints --coordinator=h:1 12",
          "logs 3",
          "logs -f 3",
          "logs 3 --follow",
          "logs --coordinator h:1 -f 3");

  /** Lines that picocli must parse (whatever it makes of them). */
  private static final List<String> OTHERS =
      List.of(
          "",
          "--help",
          "-V",
          "help ps",
          "ps --help",
          "ps -h",
          "ps --jso",
          "ps --json --json",
          "ps 3",
          "ps --",
          "ps -- --json",
          "ps @args",
          "ps --coordinator",
          "ps --coordinator=",
          "ps --coordinator --json",
          "ps --coordinator -x",
          "ps -f",
          "nodes 1",
          "checkpoints 1 2",
          "checkpoints -7",
          "checkpoints --json=true",
          "logs",
          "logs 1 2",
          "logs -f",
          "logs --json 1",
          "logs -fh 1",
          "logs -f -f 1",
          "logs -",
          "pss",
          "run -- ps",
          "wait 1",
          "kill 1");

  @Test
  void quickLinesAreReadAsPicocliReadsThem() throws Exception {
    for (String line : QUICK) {
      String[] args = line.split(" ");
      Callable<Integer> quick = QuickParse.parse(args);
      assertNotNull(quick, line);
      assertEquals(picocli(args), fields(quick), line);
    }
  }

  @Test
  void everythingElseIsLeftToPicocli() {
    for (String line : OTHERS) {
      assertNull(QuickParse.parse(line.isEmpty() ? new String[0] : line.split(" ")), line);
    }
  }

  /** The fields of the command object picocli makes of {@code args}. */
  private static String picocli(String[] args) throws Exception {
    CommandLine cl = Main.commandLine(args);
    CommandLine.ParseResult parsed = cl.parseArgs(args);
    return fields(parsed.subcommand().commandSpec().userObject());
  }

  private static String fields(Object command) throws Exception {
    List<String> out = new ArrayList<>(List.of(command.getClass().getSimpleName()));
    for (Field f : command.getClass().getDeclaredFields()) {
      if (Modifier.isStatic(f.getModifiers())) {
        continue;
      }
      f.setAccessible(true);
      Object v = f.get(command);
      if (v instanceof ConnectionOptions c) {
        v = "coordinator=" + c.coordinator;
      }
      out.add(f.getName() + "=" + v);
    }
    return String.join(" ", out);
  }
}
