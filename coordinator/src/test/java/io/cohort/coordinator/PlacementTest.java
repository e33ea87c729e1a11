package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

class PlacementTest {
  private static final Map<String, Integer> IDLE = Map.of();

  /** Checked nodes, in order; n1..n4 are up, n5 is down, anything else unknown. */
  private final List<String> checked = new ArrayList<>();

  private final Consumer<String> requireUp =
      n -> {
        checked.add(n);
        if (n.equals("n5")) {
          throw new CohortException(CohortException.Kind.UNAVAILABLE, "node n5 is down");
        }
        if (!n.matches("n[1-4]")) {
          throw CohortException.notFound("node %s is not known", n);
        }
      };

  private Placement place(String nodes, int vhosts, Map<String, Integer> running) {
    return Placement.onNodes(List.of(nodes.split(",", -1)), vhosts, running, requireUp);
  }

  @Test
  void fewerNodesThanVhostsShareThemEvenlyInRuns() {
    assertEquals(List.of("n3", "n3"), place("n3", 2, IDLE).nodes());
    Placement p = place("n1,n2", 5, IDLE);
    assertEquals(List.of("n1", "n1", "n1", "n2", "n2"), p.nodes());
    assertEquals(List.of(), p.unused());
    assertEquals(List.of("n1", "n1", "n2", "n2", "n3", "n3"), place("n1,n2,n3", 6, IDLE).nodes());
  }

  @Test
  void theVhostLeftOverGoesToTheLeastBusyNode() {
    // n1 already runs 2 vhosts: n2 takes the third vhost; the order listed is kept.
    assertEquals(List.of("n1", "n2", "n2"), place("n1,n2", 3, Map.of("n1", 2)).nodes());
    assertEquals(List.of("n2", "n2", "n1"), place("n2,n1", 3, Map.of("n1", 2)).nodes());
  }

  @Test
  void asManyNodesAsVhostsGiveOneEachInTheOrderListed() {
    assertEquals(List.of("n2", "n3"), place("n2,n3", 2, IDLE).nodes());
    assertEquals(List.of("n3", "n1", "n2"), place("n3,n1,n2", 0, IDLE).nodes());
    assertEquals(
        List.of("n3", "n1"),
        place("n3,n1", 2, Map.of("n3", 9)).nodes(),
        "one vhost per node whatever their load");
  }

  @Test
  void moreNodesThanVhostsUseTheLeastBusyAndReportTheRest() {
    Placement p = place("n1,n2,n3", 2, IDLE);
    assertEquals(List.of("n1", "n2"), p.nodes());
    assertEquals(List.of("n3"), p.unused());
    p = place("n1,n2,n3,n4", 2, Map.of("n1", 1, "n2", 3, "n4", 1));
    assertEquals(List.of("n1", "n3"), p.nodes(), "n3 idle, then n1 (listed before n4)");
    assertEquals(List.of("n2", "n4"), p.unused());
  }

  @Test
  void withoutVhostsEveryEntryIsAVhost() {
    assertEquals(List.of("n1", "n2", "n3"), place("n1,n2,n3", 0, IDLE).nodes());
  }

  @Test
  void aRepeatedNameMakesTheListAVhostByVhostMapping() {
    assertEquals(List.of("n3", "n3"), place("n3,n3", 2, IDLE).nodes());
    Placement p = place("n2,n1,n2", 3, Map.of("n2", 5));
    assertEquals(List.of("n2", "n1", "n2"), p.nodes(), "as given, whatever the load");
    assertEquals(List.of(), p.unused());
    assertEquals(List.of("n1", "n1", "n2"), place("n1,n1,n2", 0, IDLE).nodes());
  }

  @Test
  void aMappingOfTheWrongLengthIsRefused() {
    CohortException e = assertThrows(CohortException.class, () -> place("n1,n1", 3, IDLE));
    assertEquals(CohortException.Kind.INVALID_ARGUMENT, e.kind());
    assertTrue(
        e.getMessage().contains("3 vhost(s), 2 entries") && e.getMessage().contains("--nodes n1"),
        e.getMessage());
    assertEquals(List.of(), checked, "refused before any node is asked about");
  }

  @Test
  void emptyNamesAreRefused() {
    for (String nodes : new String[] {"", "n1,,n2", "n1, "}) {
      CohortException e = assertThrows(CohortException.class, () -> place(nodes, 2, IDLE));
      assertEquals(CohortException.Kind.INVALID_ARGUMENT, e.kind(), nodes);
    }
    CohortException e =
        assertThrows(CohortException.class, () -> Placement.onNodes(List.of(), 2, IDLE, requireUp));
    assertEquals(CohortException.Kind.INVALID_ARGUMENT, e.kind());
  }

  @Test
  void unknownAndDownNodesAreRefusedEvenWhenTheyWouldBeLeftUnused() {
    CohortException unknown = assertThrows(CohortException.class, () -> place("n1,n9", 1, IDLE));
    assertEquals(CohortException.Kind.NOT_FOUND, unknown.kind());
    assertTrue(unknown.getMessage().contains("n9"), unknown.getMessage());
    CohortException down = assertThrows(CohortException.class, () -> place("n1,n2,n5", 2, IDLE));
    assertEquals(CohortException.Kind.UNAVAILABLE, down.kind());
    CohortException inMapping = assertThrows(CohortException.class, () -> place("n5,n5", 2, IDLE));
    assertEquals(CohortException.Kind.UNAVAILABLE, inMapping.kind());
    assertEquals(List.of("n1", "n9", "n1", "n2", "n5", "n5"), checked, "each node once per call");
  }

  @Test
  void withNoNodeNamedAllVhostsGoToTheLeastBusyLiveNode() {
    assertEquals(
        List.of("n2", "n2", "n2"),
        Placement.onLeastBusy(List.of("n1", "n2", "n3"), 3, Map.of("n1", 1, "n3", 1)).nodes());
    assertEquals(List.of("n1"), Placement.onLeastBusy(List.of("n2", "n1"), 0, IDLE).nodes());
    CohortException e =
        assertThrows(CohortException.class, () -> Placement.onLeastBusy(List.of(), 2, IDLE));
    assertEquals(CohortException.Kind.UNAVAILABLE, e.kind());
  }
}
