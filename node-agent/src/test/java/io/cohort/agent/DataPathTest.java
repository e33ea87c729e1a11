package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import org.junit.jupiter.api.Test;

/** The vhosts' MTU follows from the fabric's under VXLAN. */
class DataPathTest {
  @Test
  void theVhostMtuIsTheFabricsLessVxlan() {
    assertEquals(1450, new DataPath(true, 1500).vhostMtu());
    assertEquals(8950, new DataPath(true, 9000).vhostMtu());
    assertEquals(65000, new DataPath(true, 65535).vhostMtu(), "at most the overlay's");
    assertEquals(65000, DataPath.overlay().vhostMtu(), "the overlay has no fabric limit");
  }

  @Test
  void aFabricTooSmallForVxlanIsRefusedWithWhatToDo() {
    CohortException e = assertThrows(CohortException.class, () -> new DataPath(true, 1200));
    assertTrue(e.getMessage().contains("--data-path overlay"), e.getMessage());
  }
}
