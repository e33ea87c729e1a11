package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.VhostPlacement;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A node that takes a call and never answers (cut off, not yet called down) slows ps briefly. */
class SilentNodeQueryTest {
  @TempDir Path dir;

  @Test
  void psOfAJobOnASilentNodeAnswersWithinTheQueryLimitWithWhatIsKnown() throws Exception {
    List<String> calls = Collections.synchronizedList(new ArrayList<>());
    ScriptedAgent n1 = new ScriptedAgent("n1", calls, Set.of(), null);
    n1.silentQueries = true;
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(
        JobRecord.newBuilder()
            .setInfo(
                JobInfo.newBuilder()
                    .setJobId("7")
                    .setState(JobState.JOB_STATE_RUNNING)
                    .addVhosts(VhostPlacement.newBuilder().setVhostId("7-0").setNode("n1")))
            .build());
    try (InProcessAgents agents = new InProcessAgents();
        Coordinator coordinator =
            new Coordinator(
                catalog,
                agents.serve(Map.of("n1", n1)), // calls wait up to 10 s
                BarrierConfig.defaults(),
                NodeLossConfig.defaults(),
                Clock.systemUTC())) {
      long t0 = System.nanoTime();
      assertEquals(JobState.JOB_STATE_RUNNING, coordinator.job("7").getState());
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertTrue(
          ms < 8_000,
          "ps waited " + ms + " ms, not the query limit of " + AgentClient.QUERY.toMillis());
    }
  }

  @Test
  void aCallToANodeThatFallsSilentEndsWithoutWaitingOutItsDeadline() throws Exception {
    List<String> calls = Collections.synchronizedList(new ArrayList<>());
    ScriptedAgent n1 = new ScriptedAgent("n1", calls, Set.of(), null);
    n1.silentQueries = true;
    String address = "silent-n1-" + System.nanoTime();
    io.grpc.Server server =
        io.grpc.inprocess.InProcessServerBuilder.forName(address).addService(n1).build().start();
    AgentDirectory directory =
        new AgentDirectory(
            Clock.systemUTC(),
            java.time.Duration.ofMillis(200), // liveness: silent for 400 ms ends a call
            a -> io.grpc.inprocess.InProcessChannelBuilder.forName(a).build(),
            (node, ch) ->
                new AgentClient(
                    node, ch, java.time.Duration.ofMinutes(1), java.time.Duration.ofMinutes(1)));
    try {
      directory.heartbeat(
          io.cohort.proto.v1.HeartbeatRequest.newBuilder()
              .setNode("n1")
              .setAddress(address)
              .build());
      AgentClient agent = directory.agent("n1");
      io.cohort.common.CohortException e =
          org.junit.jupiter.api.Assertions.assertThrows(
              io.cohort.common.CohortException.class, () -> agent.kill("7-0"));
      assertEquals(io.cohort.common.CohortException.Kind.UNAVAILABLE, e.kind(), e.getMessage());
      assertTrue(e.getMessage().contains("node n1 stopped answering"), e.getMessage());
    } finally {
      directory.close();
      server.shutdownNow();
    }
  }
}
