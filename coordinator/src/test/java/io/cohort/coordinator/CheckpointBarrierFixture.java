package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the tests of {@link CheckpointBarrier} share: {@link ScriptedAgent}s served over in-process
 * gRPC, all recording into {@link #calls}, and the barrier of epoch 3 of job 7 over them.
 */
abstract class CheckpointBarrierFixture {
  @TempDir Path dir;

  private final InProcessAgents inProcess = new InProcessAgents();
  private final ExecutorService io = Executors.newCachedThreadPool();
  private final ScheduledExecutorService serial = Executors.newSingleThreadScheduledExecutor();

  /** What the agents were asked, in order ("dump 7-0", "finish 7-1 ABORT", ...). */
  final List<String> calls = Collections.synchronizedList(new ArrayList<>());

  @AfterEach
  void tearDown() {
    inProcess.close();
    io.shutdownNow();
    serial.shutdownNow();
  }

  /**
   * An agent of {@code node} that fails the dumps of {@code failDump} and holds every dump until
   * {@code hang} opens (if given).
   */
  ScriptedAgent agent(String node, Set<String> failDump, CountDownLatch hang) {
    return new ScriptedAgent(node, calls, failDump, hang);
  }

  /** A directory of the given agents, by node name. */
  AgentDirectory agents(Map<String, ScriptedAgent> byNode) throws Exception {
    return inProcess.serve(Map.copyOf(byNode));
  }

  /** Agents n1 and n2 that do all they are asked. */
  AgentDirectory workingAgents() throws Exception {
    return agents(Map.of("n1", agent("n1", Set.of(), null), "n2", agent("n2", Set.of(), null)));
  }

  /** Job 7 with its vhosts placed as {@code vhostAtNode} says ("7-0@n1"). */
  static JobRecord job(String... vhostAtNode) {
    JobInfo.Builder info = JobInfo.newBuilder().setJobId("7");
    for (String v : vhostAtNode) {
      String[] p = v.split("@");
      info.addVhosts(VhostPlacement.newBuilder().setVhostId(p[0]).setNode(p[1]));
    }
    return JobRecord.newBuilder().setInfo(info).build();
  }

  /** Starts the barrier of epoch 3 of job 7 over {@code vhosts} ("7-0@n1"). */
  CompletableFuture<CheckpointInfo> barrier(
      AgentDirectory agents,
      Catalog catalog,
      boolean stop,
      BarrierConfig config,
      CheckpointBarrier.Listener listener,
      String... vhosts) {
    return new CheckpointBarrier(
            job(vhosts), 3, stop, agents, catalog, io, serial, Clock.systemUTC(), config, listener)
        .start();
  }

  /**
   * The abort must come at once, not after a phase timeout (10 minutes by default): a barrier that
   * is left hanging keeps the dumped vhosts frozen by CRIU's post-dump hook.
   */
  static CohortException abortedPromptly(CompletableFuture<CheckpointInfo> f) throws Exception {
    try {
      f.get(10, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      return assertInstanceOf(CohortException.class, e.getCause());
    } catch (TimeoutException e) {
      throw new AssertionError("the barrier neither committed nor aborted: it hangs", e);
    }
    throw new AssertionError("the barrier committed although its listener failed");
  }

  /** A coordinator over {@code catalog} where job 7 runs with vhosts 7-0@n1 and 7-1@n2. */
  static Coordinator coordinatorOfRunningJob(Catalog catalog, AgentDirectory agents) {
    JobRecord rec = job("7-0@n1", "7-1@n2");
    catalog.saveJob(
        rec.toBuilder()
            .setNextEpoch(3)
            .setInfo(rec.getInfo().toBuilder().setState(JobState.JOB_STATE_RUNNING))
            .build());
    return new Coordinator(
        catalog, agents, BarrierConfig.defaults(), NodeLossConfig.defaults(), Clock.systemUTC());
  }
}
