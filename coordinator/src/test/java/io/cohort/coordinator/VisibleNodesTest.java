package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cohort.common.Caller;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.NodeInfo;
import io.cohort.proto.v1.VhostPlacement;
import java.util.List;
import org.junit.jupiter.api.Test;

/** `cohort nodes` shows a user the vhosts of their own running jobs on each node; root all. */
class VisibleNodesTest {
  private static final Caller ALICE = new Caller(1001, 1001, List.of(1001), "alice");
  private static final Caller BOB = new Caller(1002, 1002, List.of(1002), "bob");
  private static final Caller ROOT = new Caller(0, 0, List.of(0), "root");

  private static final List<NodeInfo> NODES =
      List.of(node("n1", 3), node("n2", 2), node("n3", 0)); // as the coordinator counts: all

  private static final List<JobInfo> JOBS =
      List.of(
          job("1", ALICE, JobState.JOB_STATE_RUNNING, "n1", "n2"),
          job("2", BOB, JobState.JOB_STATE_RUNNING, "n1", "n1"),
          job("3", BOB, JobState.JOB_STATE_RUNNING, "n2"),
          job("4", ALICE, JobState.JOB_STATE_EXITED, "n3"));

  private static NodeInfo node(String name, int running) {
    return NodeInfo.newBuilder().setNode(name).setAlive(true).setRunningVhosts(running).build();
  }

  private static JobInfo job(String id, Caller owner, JobState state, String... nodes) {
    JobInfo.Builder b = JobInfo.newBuilder().setJobId(id).setState(state).setOwner(owner.toOwner());
    for (int i = 0; i < nodes.length; i++) {
      b.addVhosts(VhostPlacement.newBuilder().setVhostId(id + "-" + i).setNode(nodes[i]));
    }
    return b.build();
  }

  private static List<Integer> running(Caller caller) {
    return JobAccess.visibleNodes(caller, NODES, JOBS).stream()
        .map(NodeInfo::getRunningVhosts)
        .toList();
  }

  @Test
  void aUserCountsOnlyTheirOwnRunningVhostsAndRootCountsAll() {
    assertEquals(List.of(1, 1, 0), running(ALICE)); // job 4 has ended
    assertEquals(List.of(2, 1, 0), running(BOB));
    assertEquals(List.of(3, 2, 0), running(ROOT));
    assertEquals(
        List.of("n1", "n2", "n3"),
        JobAccess.visibleNodes(BOB, NODES, JOBS).stream().map(NodeInfo::getNode).toList(),
        "every node is listed, whoever asks");
  }
}
