package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The job's stdin as `cohort run` reads it: the limit, and its error past it. */
class JobStdinTest {
  @Test
  void theLimitIsBytesOrKOrMUpTo64M() {
    assertEquals(1000, JobStdin.parseLimit("1000"));
    assertEquals(16L << 20, JobStdin.parseLimit("16M"));
    assertEquals(512L << 10, JobStdin.parseLimit("512k"));
    assertEquals(64L << 20, JobStdin.parseLimit("64M"));
    for (String bad : new String[] {"65M", "1G", "-1", "lots", ""}) {
      assertTrue(
          assertThrows(CohortException.class, () -> JobStdin.parseLimit(bad))
              .getMessage()
              .contains("up to 64M"),
          bad);
    }
  }

  @Test
  void aNonTerminalInputIsReadWholeOrRefusedPastTheLimit() {
    // The tests' stdin is never a terminal (surefire gives a pipe or a file).
    PrintStream err = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    byte[] deck = "steps 3\nsay hi\n".getBytes(StandardCharsets.UTF_8);
    assertEquals(
        "steps 3\nsay hi\n",
        JobStdin.read(new ByteArrayInputStream(deck), "1K", err).toStringUtf8());
    CohortException e =
        assertThrows(
            CohortException.class,
            () -> JobStdin.read(new ByteArrayInputStream(new byte[2048]), "1K", err));
    assertTrue(e.getMessage().contains("COHORT_STDIN_MAX"), e.getMessage());
  }
}
