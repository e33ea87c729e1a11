package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CriuLogTest {
  @TempDir Path dir;

  @Test
  void frozenTimeSpansFirstSeizeToUnfreeze() throws Exception {
    Path log = dir.resolve("dump.log");
    Files.writeString(
        log,
        String.join(
            "\n",
            "(00.000010) Version: 4.2.1",
            "(00.045771) Seized task 9544, state 1",
            "(00.045986) Seized task 9545, state 1",
            "garbage line without a stamp",
            "(00.327981) Unfreezing tasks into 1",
            "(00.328072) Writing stats"));
    assertEquals(OptionalLong.of(282), CriuLog.frozenMillis(log));
  }

  @Test
  void noAnswerWithoutBothEnds() throws Exception {
    Path log = dir.resolve("dump.log");
    Files.writeString(log, "(00.045771) Seized task 9544, state 1\n");
    assertEquals(OptionalLong.empty(), CriuLog.frozenMillis(log));
    assertEquals(OptionalLong.empty(), CriuLog.frozenMillis(dir.resolve("missing.log")));
  }
}
