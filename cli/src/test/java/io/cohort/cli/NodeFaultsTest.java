package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What `cluster kill/cut/join` refuse, before touching anything. (What they do to real processes
 * and links: {@code ClusterKillCutIT} in mpi-tests.)
 */
class NodeFaultsTest {
  @TempDir Path home;

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();

  /** A cluster record of one node, whose agent was never started (pid 0). */
  private NodeFaults cluster(String agentFlags) throws Exception {
    Path dir = home.resolve("cluster");
    Files.createDirectories(dir.resolve("nodes/n1/images/7.1"));
    Files.writeString(
        dir.resolve("cluster.json"),
        "{\"prefix\":\"cohortnf\",\"subnet\":\"198.18.250\",\"nodes\":1,\"processes\":["
            + "{\"name\":\"coordinator\",\"pid\":0,\"start_ticks\":1,\"cmd\":[\"x\"]},"
            + "{\"name\":\"n1\",\"pid\":0,\"start_ticks\":1,\"cmd\":[\"agent\""
            + agentFlags
            + "]}]}");
    return new NodeFaults(home, new PrintStream(out, true, StandardCharsets.UTF_8));
  }

  @Test
  void wipingASharedImageStoreIsRefused() throws Exception {
    NodeFaults f = cluster(",\"--shared-images\",\"/srv/x\"");
    CohortException e = assertThrows(CohortException.class, () -> f.kill("n1", true));
    assertEquals(CohortException.Kind.FAILED_PRECONDITION, e.kind());
    assertTrue(e.getMessage().contains("without --wipe-images"), e.getMessage());
    assertTrue(Files.isDirectory(home.resolve("cluster/nodes/n1/images/7.1")));
  }

  @Test
  void killWipesTheNodesOwnImageStore() throws Exception {
    cluster("").kill("n1", true);
    assertTrue(!Files.exists(home.resolve("cluster/nodes/n1/images")));
    String said = out.toString(StandardCharsets.UTF_8);
    assertTrue(said.contains("n1: nothing of it was running"), said);
    assertTrue(said.contains("n1: deleted its image store"), said);
  }

  @Test
  void unknownNodesAndTheCoordinatorAreRefused() throws Exception {
    NodeFaults f = cluster("");
    assertEquals(
        CohortException.Kind.NOT_FOUND,
        assertThrows(CohortException.class, () -> f.kill("n2", false)).kind());
    assertEquals(
        CohortException.Kind.INVALID_ARGUMENT,
        assertThrows(CohortException.class, () -> f.kill("coordinator", false)).kind());
    assertEquals(
        CohortException.Kind.INVALID_ARGUMENT,
        assertThrows(CohortException.class, () -> f.cut("coordinator")).kind());
    assertEquals(
        CohortException.Kind.NOT_FOUND,
        assertThrows(CohortException.class, () -> f.join("n9")).kind());
  }

  @Test
  void withoutAClusterTheErrorSaysHowToStartOne() {
    NodeFaults f = new NodeFaults(home, new PrintStream(out, true, StandardCharsets.UTF_8));
    CohortException e = assertThrows(CohortException.class, () -> f.cut("n1"));
    assertTrue(e.getMessage().contains("cohort cluster up"), e.getMessage());
  }
}
