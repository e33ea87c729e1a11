package io.cohort.agent;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Facts read from a CRIU log, whose lines start with "(SS.uuuuuu)" since CRIU started. */
final class CriuLog {
  private static final Pattern STAMP = Pattern.compile("^\\((\\d+)\\.(\\d{6})\\) (.*)$");

  private CriuLog() {}

  /**
   * How long the tasks were frozen: from the first "Seized task" to "Unfreezing tasks" (CRIU 4.x at
   * -v3 and above); empty if the log does not say.
   */
  static OptionalLong frozenMillis(Path log) {
    long seized = -1;
    long unfrozen = -1;
    try (BufferedReader r = Files.newBufferedReader(log, StandardCharsets.UTF_8)) {
      for (String line; (line = r.readLine()) != null; ) {
        Matcher m = STAMP.matcher(line);
        if (!m.matches()) {
          continue;
        }
        long micros = Long.parseLong(m.group(1)) * 1_000_000 + Long.parseLong(m.group(2));
        String text = m.group(3);
        if (seized < 0 && text.startsWith("Seized task")) {
          seized = micros;
        } else if (text.startsWith("Unfreezing tasks")) {
          unfrozen = micros;
        }
      }
    } catch (IOException e) {
      return OptionalLong.empty();
    }
    return seized >= 0 && unfrozen >= seized
        ? OptionalLong.of((unfrozen - seized) / 1000)
        : OptionalLong.empty();
  }
}
