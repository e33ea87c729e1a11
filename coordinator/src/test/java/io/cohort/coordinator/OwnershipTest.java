package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.Caller;
import io.cohort.common.CallerInterceptor;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.CheckpointRequest;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.FenceNodeRequest;
import io.cohort.proto.v1.GetJobRequest;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.KillJobRequest;
import io.cohort.proto.v1.ListCheckpointsRequest;
import io.cohort.proto.v1.ListJobsRequest;
import io.cohort.proto.v1.Owner;
import io.cohort.proto.v1.RemoveCheckpointRequest;
import io.cohort.proto.v1.RestartRequest;
import io.cohort.proto.v1.SignalJobRequest;
import io.cohort.proto.v1.StreamOutputRequest;
import io.cohort.proto.v1.WatchJobRequest;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Only a job's owner or root touches it: every client call that names another user's job or
 * checkpoint is refused with PERMISSION_DENIED before it does anything, and lists show a user their
 * own. Real gRPC (in process), the real service and catalog; the caller is fixed per server, as the
 * Unix socket's transport would set it.
 */
class OwnershipTest {
  private static final Caller ALICE = new Caller(1001, 1001, List.of(1001, 27), "alice");
  private static final Caller BOB = new Caller(1002, 1002, List.of(1002), "bob");

  @TempDir Path dir;

  private final InProcessAgents agents = new InProcessAgents();
  private final List<Server> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();
  private Catalog catalog;
  private Coordinator coordinator;

  @BeforeEach
  void setUp() throws Exception {
    catalog = new Catalog(dir, TestKey.KEY);
    saveJob("12", ALICE.toOwner());
    saveJob("13", BOB.toOwner());
    saveJob("14", Owner.getDefaultInstance()); // recorded before owners were: root's
    for (String c : List.of("12.1", "13.1", "14.1")) {
      catalog.commitCheckpoint(
          CheckpointInfo.newBuilder()
              .setCheckpointId(c)
              .setJobId(c.substring(0, 2))
              .setEpoch(1)
              .build());
    }
    coordinator =
        new Coordinator(
            catalog,
            agents.serve(Map.of()),
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC());
  }

  private void saveJob(String id, Owner owner) {
    catalog.saveJob(
        JobRecord.newBuilder()
            .setNextEpoch(2)
            .setInfo(
                JobInfo.newBuilder()
                    .setJobId(id)
                    .setState(JobState.JOB_STATE_EXITED)
                    .setLatestCheckpoint(id + ".1")
                    .setOwner(owner))
            .build());
  }

  @AfterEach
  void tearDown() {
    channels.forEach(ManagedChannel::shutdownNow);
    servers.forEach(Server::shutdownNow);
    coordinator.close();
    agents.close();
  }

  /** A client of the real service whose every call is {@code caller}'s. */
  private CohortGrpc.CohortBlockingStub as(Caller caller) throws Exception {
    String name = "ownership-" + System.nanoTime();
    servers.add(
        InProcessServerBuilder.forName(name)
            .addService(new CohortGrpcService(coordinator))
            .intercept(CallerInterceptor.fixed(caller))
            .build()
            .start());
    ManagedChannel ch = InProcessChannelBuilder.forName(name).build();
    channels.add(ch);
    return CohortGrpc.newBlockingStub(ch);
  }

  private static List<String> jobIds(CohortGrpc.CohortBlockingStub s) {
    return s.listJobs(ListJobsRequest.getDefaultInstance()).getJobsList().stream()
        .map(JobInfo::getJobId)
        .toList();
  }

  private static List<String> checkpointIds(CohortGrpc.CohortBlockingStub s) {
    return s
        .listCheckpoints(ListCheckpointsRequest.getDefaultInstance())
        .getCheckpointsList()
        .stream()
        .map(CheckpointInfo::getCheckpointId)
        .toList();
  }

  @Test
  void aUserSeesOnlyTheirOwnJobsAndCheckpointsAndRootSeesAll() throws Exception {
    assertEquals(List.of("12"), jobIds(as(ALICE)));
    assertEquals(List.of("13"), jobIds(as(BOB)));
    assertEquals(List.of("12", "13", "14"), jobIds(as(Caller.root())).stream().sorted().toList());
    assertEquals(List.of("12.1"), checkpointIds(as(ALICE)));
    assertEquals(List.of("13.1"), checkpointIds(as(BOB)));
    assertEquals(
        List.of("12.1", "13.1", "14.1"),
        checkpointIds(as(Caller.root())).stream().sorted().toList());
    assertEquals(
        "12",
        as(ALICE).getJob(GetJobRequest.newBuilder().setJobId("12").build()).getJob().getJobId());
    assertEquals(
        "alice",
        as(Caller.root())
            .getJob(GetJobRequest.newBuilder().setJobId("12").build())
            .getJob()
            .getOwner()
            .getUser());
  }

  @Test
  void everyCallOnAnotherUsersJobIsDeniedSayingWhoseItIsAndChangesNothing() throws Exception {
    CohortGrpc.CohortBlockingStub bob = as(BOB);
    JobRecord before = catalog.job("12");
    List<Function<CohortGrpc.CohortBlockingStub, Object>> calls =
        List.of(
            s -> s.getJob(GetJobRequest.newBuilder().setJobId("12").build()),
            s -> s.killJob(KillJobRequest.newBuilder().setJobId("12").build()),
            s ->
                s.signalJob(SignalJobRequest.newBuilder().setJobId("12").setSignal("TERM").build()),
            s -> s.restart(RestartRequest.newBuilder().setTarget("12").build()),
            s -> s.restart(RestartRequest.newBuilder().setTarget("12.1").build()),
            s -> s.listCheckpoints(ListCheckpointsRequest.newBuilder().setJobId("12").build()),
            s ->
                s.removeCheckpoint(
                    RemoveCheckpointRequest.newBuilder().setCheckpointId("12.1").build()),
            s -> s.checkpoint(CheckpointRequest.newBuilder().setJobId("12").build()).next(),
            s -> s.watchJob(WatchJobRequest.newBuilder().setJobId("12").build()).next(),
            s -> s.streamOutput(StreamOutputRequest.newBuilder().setJobId("12").build()).next());
    for (Function<CohortGrpc.CohortBlockingStub, Object> call : calls) {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> call.apply(bob));
      assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode(), e.toString());
      String said = e.getStatus().getDescription();
      assertTrue(said.contains("belongs to alice, not to bob"), said);
    }
    assertEquals(before, catalog.job("12"));
    assertTrue(catalog.checkpoint("12.1").isPresent(), "bob's rm removed alice's checkpoint");
    // A job recorded without an owner is root's, as all jobs were.
    StatusRuntimeException legacy =
        assertThrows(
            StatusRuntimeException.class,
            () -> bob.getJob(GetJobRequest.newBuilder().setJobId("14").build()));
    assertEquals("job 14 belongs to root, not to bob", legacy.getStatus().getDescription());
    // Declaring a node dead acts on every user's jobs: root's only.
    StatusRuntimeException fence =
        assertThrows(
            StatusRuntimeException.class,
            () -> bob.fenceNode(FenceNodeRequest.newBuilder().setNode("n1").build()));
    assertEquals(Status.Code.PERMISSION_DENIED, fence.getStatus().getCode());
  }

  @Test
  void aServerWithoutCallerIdentityRefusesEveryCall() throws Exception {
    String name = "anonymous-" + System.nanoTime();
    servers.add(
        InProcessServerBuilder.forName(name)
            .addService(new CohortGrpcService(coordinator))
            .intercept(CallerInterceptor.fromTransport("say who you are"))
            .build()
            .start());
    ManagedChannel ch = InProcessChannelBuilder.forName(name).build();
    channels.add(ch);
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> jobIds(CohortGrpc.newBlockingStub(ch)));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    assertEquals("say who you are", e.getStatus().getDescription());
  }
}
