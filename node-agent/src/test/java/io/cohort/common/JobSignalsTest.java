package io.cohort.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Which signals a job may be sent, and what the user is told about the others. */
class JobSignalsTest {
  @Test
  void namesWithOrWithoutSigAndNumbersAreAccepted() {
    assertEquals(10, JobSignals.parse("USR1"));
    assertEquals(10, JobSignals.parse("sigusr1"));
    assertEquals(12, JobSignals.parse(" SIGUSR2 "));
    assertEquals(15, JobSignals.parse("15"));
    assertEquals(1, JobSignals.parse("hup"));
  }

  @Test
  void killStopAndUnknownSignalsAreRefusedSayingWhatToDo() {
    CohortException kill = assertThrows(CohortException.class, () -> JobSignals.parse("KILL"));
    assertEquals(CohortException.Kind.INVALID_ARGUMENT, kill.kind());
    assertTrue(kill.getMessage().contains("`cohort kill JOB`"), kill.getMessage());
    assertTrue(
        assertThrows(CohortException.class, () -> JobSignals.parse("9"))
            .getMessage()
            .contains("`cohort kill JOB`"));
    for (String s : new String[] {"STOP", "SIGTSTP", "cont", "19"}) {
      assertTrue(
          assertThrows(CohortException.class, () -> JobSignals.parse(s))
              .getMessage()
              .contains("cohort checkpoint --stop"),
          s);
    }
    for (String s : new String[] {"NOPE", "SIGSEGV", "11", "", "999999"}) {
      assertTrue(
          assertThrows(CohortException.class, () -> JobSignals.parse(s))
              .getMessage()
              .contains("USR1 (10)"),
          s);
    }
    assertThrows(CohortException.class, () -> JobSignals.require(9));
  }
}
