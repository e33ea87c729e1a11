package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.FenceNodeResponse;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.KillJobResponse;
import io.cohort.proto.v1.NodeInfo;
import io.cohort.proto.v1.NodeState;
import io.cohort.proto.v1.OutputStream;
import io.cohort.proto.v1.VhostPlacement;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A coordinator restarted while one node (n1) has not registered again: everything else works, n1's
 * vhosts are shown as unknown, and a kill of a job on n1 is recorded and completed when n1 is back.
 */
class UnregisteredNodeTest {
  @TempDir Path dir;

  private RegisteredAgents agents;
  private Catalog catalog;
  private Coordinator coordinator;

  @BeforeEach
  void setUp() throws Exception {
    agents = new RegisteredAgents();
    agents.serve(new ScriptedAgent("n1", agents.calls, Set.of(), null));
    agents.serve(new ScriptedAgent("n2", agents.calls, Set.of(), null));
    catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(job("1", "n1"));
    catalog.saveJob(job("2", "n2"));
    catalog.commitCheckpoint(
        CheckpointInfo.newBuilder()
            .setCheckpointId("1.1")
            .setJobId("1")
            .setEpoch(1)
            .addVhosts(VhostPlacement.newBuilder().setVhostId("1-0").setNode("n1"))
            .build());
    coordinator = agents.coordinator(catalog);
    coordinator.heartbeat(agents.beat("n2")); // n1 is not back yet
  }

  @AfterEach
  void tearDown() {
    coordinator.close();
    agents.close();
  }

  private static JobRecord job(String id, String node) {
    return JobRecord.newBuilder()
        .setNextEpoch(2)
        .setInfo(
            JobInfo.newBuilder()
                .setJobId(id)
                .setState(JobState.JOB_STATE_RUNNING)
                .addVhosts(VhostPlacement.newBuilder().setVhostId(id + "-0").setNode(node)))
        .build();
  }

  @Test
  void everyQueryWorksAndShowsTheVhostsOfTheNodeNotRegisteredAsUnknown() {
    Map<String, JobInfo> jobs =
        coordinator.jobs().stream().collect(Collectors.toMap(JobInfo::getJobId, j -> j));
    assertEquals(List.of("n1"), jobs.get("1").getUnreachableNodesList());
    assertEquals(JobState.JOB_STATE_RUNNING, jobs.get("1").getState(), "the last state known");
    assertEquals(List.of(), jobs.get("2").getUnreachableNodesList());
    assertEquals(1, coordinator.checkpoints("1").size());
    Map<String, NodeInfo> nodes =
        coordinator.nodes().stream().collect(Collectors.toMap(NodeInfo::getNode, n -> n));
    assertEquals(NodeState.NODE_STATE_DOWN, nodes.get("n1").getState());
    assertEquals(NodeState.NODE_STATE_UP, nodes.get("n2").getState());
    assertTrue(
        coordinator.output("2", 0, false, OutputStream.OUTPUT_STREAM_UNSPECIFIED).hasNext(),
        "the logs of a job elsewhere");
    CohortException logs =
        assertThrows(
            CohortException.class,
            () -> coordinator.output("1", 0, false, OutputStream.OUTPUT_STREAM_UNSPECIFIED));
    assertEquals(CohortException.Kind.UNAVAILABLE, logs.kind());
    assertTrue(logs.getMessage().contains("node n1 has not registered"), logs.getMessage());
  }

  @Test
  void aKillOfAJobOnTheNodeIsRecordedAndCompletedWhenItRegisters() throws Exception {
    KillJobResponse r = coordinator.kill("1");
    assertEquals(JobState.JOB_STATE_KILLED, r.getJob().getState());
    assertTrue(r.getWarnings(0).contains("vhost 1-0 on node n1"), r.getWarningsList().toString());
    assertEquals(1, catalog.job("1").getVhostsToEndCount());
    assertTrue(!agents.calls.contains("kill 1-0"));

    coordinator.heartbeat(agents.beat("n1"));
    for (int i = 0; i < 1000 && catalog.job("1").getVhostsToEndCount() > 0; i++) {
      Thread.sleep(10);
    }
    assertEquals(0, catalog.job("1").getVhostsToEndCount(), "ended once n1 is back");
    assertTrue(agents.calls.contains("kill 1-0"));
    assertEquals(JobState.JOB_STATE_RUNNING, coordinator.job("2").getState());
  }

  @Test
  void aNodeThatHasNotRegisteredCanBeDeclaredDead() {
    FenceNodeResponse r = coordinator.fenceNode("n1");
    assertEquals(List.of("1-0 (job 1)"), r.getStaleVhostsList());
    assertEquals(NodeState.NODE_STATE_DEAD, r.getNode().getState());
    assertThrows(CohortException.class, () -> coordinator.fenceNode("n2"), "n2 is up");
  }
}
