package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.VhostPlacement;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The barrier state machine against scripted agents served over in-process gRPC: the order of
 * the phases, the commit record, and aborts on failures and timeouts.
 */
class CheckpointBarrierTest {
  @TempDir
  Path dir;

  private final List<Server> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final ExecutorService io = Executors.newCachedThreadPool();
  private final ScheduledExecutorService serial = Executors.newSingleThreadScheduledExecutor();
  private final List<String> calls = Collections.synchronizedList(new ArrayList<>());

  @AfterEach
  void tearDown() {
    channels.forEach(ManagedChannel::shutdownNow);
    servers.forEach(Server::shutdownNow);
    io.shutdownNow();
    serial.shutdownNow();
  }

  /** An agent that records every call and fails the dump of the vhosts in {@code failDump}. */
  private final class ScriptedAgent extends AgentGrpc.AgentImplBase {
    final Set<String> failDump;
    final CountDownLatch hang;

    ScriptedAgent(Set<String> failDump, CountDownLatch hang) {
      this.failDump = failDump;
      this.hang = hang;
    }

    @Override
    public void prepareCheckpoint(PrepareCheckpointRequest r, StreamObserver<PrepareCheckpointResponse> o) {
      calls.add("prepare " + r.getVhostIdsList());
      o.onNext(PrepareCheckpointResponse.getDefaultInstance());
      o.onCompleted();
    }

    @Override
    public void dumpVhost(DumpVhostRequest r, StreamObserver<DumpVhostResponse> o) {
      calls.add("dump " + r.getVhostId() + (r.getStop() ? " stop" : ""));
      if (hang != null) {
        try {
          hang.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      if (failDump.contains(r.getVhostId())) {
        o.onError(Status.RESOURCE_EXHAUSTED.withDescription("disk full").asRuntimeException());
        return;
      }
      o.onNext(DumpVhostResponse.newBuilder().setCriuMs(100).setImageBytes(1000).build());
      o.onCompleted();
    }

    @Override
    public void resumeVhost(ResumeVhostRequest r, StreamObserver<ResumeVhostResponse> o) {
      calls.add("resume " + r.getVhostId());
      o.onNext(ResumeVhostResponse.newBuilder().setFreezeMs(150).build());
      o.onCompleted();
    }

    @Override
    public void sealImage(SealImageRequest r, StreamObserver<SealImageResponse> o) {
      calls.add("seal " + r.getVhostId());
      o.onNext(SealImageResponse.newBuilder().setManifestSha256("sha-" + r.getVhostId()).build());
      o.onCompleted();
    }

    @Override
    public void finishCheckpoint(FinishCheckpointRequest r, StreamObserver<FinishCheckpointResponse> o) {
      calls.add("finish " + r.getVhostId() + " " + r.getDecision().name().replace("CHECKPOINT_DECISION_", ""));
      o.onNext(FinishCheckpointResponse.newBuilder().setFreezeMs(r.getDecision().getNumber() * 10).build());
      o.onCompleted();
    }
  }

  private AgentDirectory agents(Map<String, ScriptedAgent> byNode) throws Exception {
    Map<String, AgentClient> clients = new HashMap<>();
    for (Map.Entry<String, ScriptedAgent> e : byNode.entrySet()) {
      String name = "barrier-test-" + e.getKey() + "-" + System.nanoTime();
      servers.add(InProcessServerBuilder.forName(name).executor(io).addService(e.getValue())
          .build().start());
      ManagedChannel ch = InProcessChannelBuilder.forName(name).executor(io).build();
      channels.add(ch);
      clients.put(e.getKey(), new AgentClient(e.getKey(), ch, Duration.ofSeconds(5),
          Duration.ofSeconds(20)));
    }
    return new AgentDirectory(clients);
  }

  private static JobRecord job(String... vhostAtNode) {
    JobInfo.Builder info = JobInfo.newBuilder().setJobId("7");
    for (String v : vhostAtNode) {
      String[] p = v.split("@");
      info.addVhosts(VhostPlacement.newBuilder().setVhostId(p[0]).setNode(p[1]));
    }
    return JobRecord.newBuilder().setInfo(info).build();
  }

  private CheckpointInfo run(AgentDirectory agents, Catalog catalog, boolean stop,
      BarrierConfig config, String... vhosts) throws Exception {
    List<String> phases = Collections.synchronizedList(new ArrayList<>());
    CheckpointBarrier b = new CheckpointBarrier(job(vhosts), 3, stop, agents, catalog, io, serial,
        Clock.systemUTC(), config, (phase, msg) -> phases.add(phase.name()));
    return b.start().get(30, TimeUnit.SECONDS);
  }

  @Test
  void continueResumesAndSealsOnceEveryVhostIsCapturedThenCommits() throws Exception {
    Catalog catalog = new Catalog(dir);
    AgentDirectory agents = agents(Map.of(
        "n1", new ScriptedAgent(Set.of(), null), "n2", new ScriptedAgent(Set.of(), null)));
    CheckpointInfo info = run(agents, catalog, false, BarrierConfig.defaults(), "7-0@n1", "7-1@n2");

    assertEquals("7.3", info.getCheckpointId());
    assertEquals(2000, info.getImageBytes());
    assertEquals(Map.of("7-0", "sha-7-0", "7-1", "sha-7-1"), info.getManifestSha256Map());
    assertEquals(150, info.getTimings().getFreezeMs());
    assertTrue(catalog.checkpoint("7.3").isPresent(), "the record is the commit");
    // Both dumps complete before any resume or seal; both seals before any finish.
    int lastDump = Math.max(calls.indexOf("dump 7-0"), calls.indexOf("dump 7-1"));
    int firstResume = Math.min(calls.indexOf("resume 7-0"), calls.indexOf("resume 7-1"));
    int firstSeal = Math.min(calls.indexOf("seal 7-0"), calls.indexOf("seal 7-1"));
    int lastSeal = Math.max(calls.indexOf("seal 7-0"), calls.indexOf("seal 7-1"));
    int firstFinish = Math.min(calls.indexOf("finish 7-0 COMMIT_RESUME"),
        calls.indexOf("finish 7-1 COMMIT_RESUME"));
    assertTrue(lastDump < firstResume && firstResume >= 0, calls.toString());
    assertTrue(lastDump < firstSeal && firstSeal >= 0, calls.toString());
    assertTrue(lastSeal < firstFinish && firstFinish >= 0, calls.toString());
  }

  @Test
  void stopNeverResumesAndStopsOnlyAfterTheCommit() throws Exception {
    Catalog catalog = new Catalog(dir);
    AgentDirectory agents = agents(Map.of("n1", new ScriptedAgent(Set.of(), null)));
    CheckpointInfo info = run(agents, catalog, true, BarrierConfig.defaults(), "7-0@n1");
    assertTrue(info.getStoppedJob());
    assertEquals(List.of("prepare [7-0]", "dump 7-0 stop", "seal 7-0", "finish 7-0 COMMIT_STOP"),
        calls);
  }

  @Test
  void aFailedDumpAbortsEveryVhostAndCommitsNothing() throws Exception {
    Catalog catalog = new Catalog(dir);
    AgentDirectory agents = agents(Map.of(
        "n1", new ScriptedAgent(Set.of(), null), "n2", new ScriptedAgent(Set.of("7-1"), null)));
    ExecutionException e = assertThrows(ExecutionException.class,
        () -> run(agents, catalog, false, BarrierConfig.defaults(), "7-0@n1", "7-1@n2"));
    CohortException ce = assertInstanceOf(CohortException.class, e.getCause());
    assertEquals(CohortException.Kind.RESOURCE_EXHAUSTED, ce.kind());
    assertTrue(ce.getMessage().contains("disk full") && ce.getMessage().contains("carries on"),
        ce.getMessage());
    assertFalse(catalog.checkpoint("7.3").isPresent());
    assertTrue(calls.contains("finish 7-0 ABORT") && calls.contains("finish 7-1 ABORT"),
        calls.toString());
    assertFalse(calls.stream().anyMatch(c -> c.startsWith("resume") || c.startsWith("seal")),
        calls.toString());
  }

  @Test
  void aDumpThatTakesTooLongTimesOutAndAborts() throws Exception {
    Catalog catalog = new Catalog(dir);
    CountDownLatch hang = new CountDownLatch(1);
    AgentDirectory agents = agents(Map.of("n1", new ScriptedAgent(Set.of(), hang)));
    BarrierConfig quick = new BarrierConfig(Duration.ofSeconds(5), Duration.ofMillis(300),
        Duration.ofSeconds(5));
    try {
      ExecutionException e = assertThrows(ExecutionException.class,
          () -> run(agents, catalog, false, quick, "7-0@n1"));
      CohortException ce = assertInstanceOf(CohortException.class, e.getCause());
      assertEquals(CohortException.Kind.DEADLINE_EXCEEDED, ce.kind());
      assertTrue(calls.contains("finish 7-0 ABORT"), calls.toString());
      assertFalse(catalog.checkpoint("7.3").isPresent());
    } finally {
      hang.countDown();
    }
  }
}
