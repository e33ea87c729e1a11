package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.DeleteImageRequest;
import io.cohort.proto.v1.DeleteImageResponse;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.GetVhostRequest;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.ListImagesRequest;
import io.cohort.proto.v1.ListImagesResponse;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.StoredImage;
import io.cohort.proto.v1.VhostPlacement;
import io.cohort.proto.v1.VhostState;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The sweep of images no checkpoint record lists: an agent publishes an image at the end of its
 * seal, before the record is written, so a coordinator that dies in between leaves an image nobody
 * lists. The sweep removes such an image, and only such an image: never one a record lists, never
 * one of an epoch in flight (the job's lock is held), never one of an epoch the catalog did not
 * hand out or of a job it does not know.
 */
class ImageSweepTest {
  @TempDir Path dir;

  private final InProcessAgents inProcess = new InProcessAgents();
  private final List<String> deletes = Collections.synchronizedList(new ArrayList<>());

  @AfterEach
  void tearDown() {
    inProcess.close();
  }

  /**
   * An image store as ListImages shows it ("CKPT/VHOST"); several agents may share one. Its agent
   * publishes an image at the end of SealImage, as a real agent does, and may then wait on {@code
   * sealed} before it answers (a barrier caught between the seal and the record).
   */
  private final class Agent extends AgentGrpc.AgentImplBase {
    final Set<String> store;
    final CountDownLatch published = new CountDownLatch(1);
    final CountDownLatch deleted = new CountDownLatch(1);
    final CountDownLatch listed = new CountDownLatch(1);
    volatile CountDownLatch answerSeal = new CountDownLatch(0);

    Agent(Set<String> store) {
      this.store = store;
    }

    @Override
    public void listImages(ListImagesRequest r, StreamObserver<ListImagesResponse> o) {
      ListImagesResponse.Builder b = ListImagesResponse.newBuilder();
      synchronized (store) {
        for (String image : store) {
          String[] p = image.split("/");
          b.addImages(
              StoredImage.newBuilder().setCheckpointId(p[0]).setVhostId(p[1]).setBytes(1000));
        }
      }
      o.onNext(b.build());
      o.onCompleted();
      listed.countDown();
    }

    @Override
    public void deleteImage(DeleteImageRequest r, StreamObserver<DeleteImageResponse> o) {
      deletes.add(r.getCheckpointId() + "/" + r.getVhostId());
      store.remove(r.getCheckpointId() + "/" + r.getVhostId());
      deleted.countDown();
      o.onNext(DeleteImageResponse.getDefaultInstance());
      o.onCompleted();
    }

    @Override
    public void sealImage(SealImageRequest r, StreamObserver<SealImageResponse> o) {
      store.add(r.getCheckpointId() + "/" + r.getVhostId()); // published, before the record
      published.countDown();
      try {
        answerSeal.await(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      o.onNext(SealImageResponse.newBuilder().setManifestSha256("sha").build());
      o.onCompleted();
    }

    @Override
    public void getVhost(GetVhostRequest r, StreamObserver<GetVhostResponse> o) {
      o.onNext(
          GetVhostResponse.newBuilder()
              .setState(VhostState.VHOST_STATE_RUNNING)
              .setPlacement(VhostPlacement.newBuilder().setVhostId(r.getVhostId()).setNode("n1"))
              .build());
      o.onCompleted();
    }

    @Override
    public void prepareCheckpoint(
        PrepareCheckpointRequest r, StreamObserver<PrepareCheckpointResponse> o) {
      o.onNext(PrepareCheckpointResponse.getDefaultInstance());
      o.onCompleted();
    }

    @Override
    public void dumpVhost(DumpVhostRequest r, StreamObserver<DumpVhostResponse> o) {
      o.onNext(DumpVhostResponse.getDefaultInstance());
      o.onCompleted();
    }

    @Override
    public void resumeVhost(ResumeVhostRequest r, StreamObserver<ResumeVhostResponse> o) {
      o.onNext(ResumeVhostResponse.getDefaultInstance());
      o.onCompleted();
    }

    @Override
    public void finishCheckpoint(
        FinishCheckpointRequest r, StreamObserver<FinishCheckpointResponse> o) {
      o.onNext(FinishCheckpointResponse.getDefaultInstance());
      o.onCompleted();
    }
  }

  private static Set<String> store(String... images) {
    return Collections.synchronizedSet(new TreeSet<>(List.of(images)));
  }

  /** Job 7, running vhost 7-0 on n1, epochs up to {@code nextEpoch - 1} handed out. */
  private static JobRecord job(long nextEpoch) {
    return JobRecord.newBuilder()
        .setNextEpoch(nextEpoch)
        .setInfo(
            JobInfo.newBuilder()
                .setJobId("7")
                .setState(JobState.JOB_STATE_RUNNING)
                .setIncarnation(1)
                .addVhosts(VhostPlacement.newBuilder().setVhostId("7-0").setNode("n1")))
        .build();
  }

  private static CheckpointInfo record(String ckpt) {
    return CheckpointInfo.newBuilder()
        .setCheckpointId(ckpt)
        .setJobId("7")
        .setEpoch(Long.parseLong(ckpt.substring(2)))
        .build();
  }

  private static void await(CountDownLatch latch) throws InterruptedException {
    assertTrue(latch.await(10, TimeUnit.SECONDS), "timed out");
  }

  /**
   * Epoch 1 committed, epoch 2 aborted and discarded, epoch 3 sealed and published when the
   * coordinator died (no record): the sweep removes 7.3's image and keeps 7.1's.
   */
  @Test
  void anImageOfAnEpochThatWasSealedButNeverRecordedIsRemovedAndACommittedOneKept()
      throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(job(4));
    catalog.commitCheckpoint(record("7.1"));
    Set<String> images = store("7.1/7-0", "7.3/7-0");
    try (Coordinator coordinator =
        new Coordinator(
            catalog,
            inProcess.serve(Map.of("n1", new Agent(images))),
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC())) {
      assertEquals(1, coordinator.sweepImages());
    }
    assertEquals(Set.of("7.1/7-0"), images, "the committed image must stay, the orphan go");
    assertEquals(List.of("7.3/7-0"), deletes);
  }

  /**
   * A checkpoint caught between the seal (its image published) and the record, holding the job's
   * lock: its image is listed by no record yet, but the sweep keeps it. Once the barrier commits,
   * the record lists it and it stays for good.
   */
  @Test
  void anImageOfAnEpochInFlightIsKept() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(job(1));
    Agent agent = new Agent(store());
    agent.answerSeal = new CountDownLatch(1);
    try (Coordinator coordinator =
        new Coordinator(
            catalog,
            inProcess.serve(Map.of("n1", agent)),
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC())) {
      CompletableFuture<CheckpointInfo> ckpt =
          CompletableFuture.supplyAsync(() -> coordinator.checkpoint("7", false, (p, m) -> {}));
      await(agent.published);
      assertEquals(2, catalog.job("7").getNextEpoch(), "epoch 1 is handed out");
      assertTrue(catalog.checkpoint("7.1").isEmpty(), "no record yet");
      assertEquals(0, coordinator.sweepImages());
      assertEquals(Set.of("7.1/7-0"), agent.store, "the image of the epoch in flight was removed");

      agent.answerSeal.countDown();
      assertEquals("7.1", ckpt.get(10, TimeUnit.SECONDS).getCheckpointId());
      assertEquals(0, coordinator.sweepImages());
      assertEquals(Set.of("7.1/7-0"), agent.store);
    }
    assertEquals(List.of(), deletes);
  }

  /**
   * The same image with the job's lock free, but an epoch the catalog never handed out (it is
   * behind the agent: restored from a backup, or another coordinator's), or a job it does not know:
   * not provably an orphan, so kept.
   */
  @Test
  void anImageOfAnEpochNotHandedOutOrOfAnUnknownJobIsKept() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(job(3));
    Set<String> images = store("7.3/7-0", "7.4/7-0", "8.1/8-0", "7.2/7-0");
    try (Coordinator coordinator =
        new Coordinator(
            catalog,
            inProcess.serve(Map.of("n1", new Agent(images))),
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC())) {
      assertEquals(1, coordinator.sweepImages());
    }
    assertEquals(Set.of("7.3/7-0", "7.4/7-0", "8.1/8-0"), images);
    assertEquals(List.of("7.2/7-0"), deletes);
  }

  /**
   * Two nodes share one image directory (--shared-images): both list the orphan; it is deleted
   * once.
   */
  @Test
  void anOrphanInASharedStoreIsDeletedOnce() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(job(4));
    catalog.commitCheckpoint(record("7.1"));
    Set<String> shared = store("7.1/7-0", "7.3/7-0", "7.3/7-1");
    try (Coordinator coordinator =
        new Coordinator(
            catalog,
            inProcess.serve(Map.of("n1", new Agent(shared), "n2", new Agent(shared))),
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC())) {
      assertEquals(2, coordinator.sweepImages());
    }
    assertEquals(Set.of("7.1/7-0"), shared);
    assertEquals(List.of("7.3/7-0", "7.3/7-1"), deletes);
  }

  /** The coordinator daemon sweeps a node when it registers (its first heartbeat). */
  @Test
  @SuppressWarnings("try") // the registered coordinator, closed after the block
  void aNodeIsSweptWhenItRegisters() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(job(4));
    Set<String> images = store("7.3/7-0");
    Agent agent = new Agent(images);
    try (Registered r = register(catalog, agent)) {
      await(agent.deleted); // the sweep runs on the coordinator's io executor
      assertEquals(Set.of(), images);
      assertEquals(List.of("7.3/7-0"), deletes);
    }
  }

  /**
   * A node registers while its orphan's job is busy (at a coordinator's start, the reconcile of an
   * epoch left open holds the job's lock beside the sweep): the image is kept for now, and swept
   * once the lock is free, with no registration in between.
   */
  @Test
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  void anOrphanLeftForABusyJobIsSweptWhenTheJobIsFree() throws Exception {
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(job(4));
    Set<String> images = store("7.3/7-0");
    Agent agent = new Agent(images);
    Registered r;
    try (Catalog.Hold busy = catalog.lockJob("7")) {
      r = register(catalog, agent);
      await(agent.listed);
      Thread.sleep(200); // the sweep that listed it has decided
      assertEquals(Set.of("7.3/7-0"), images, "swept while its job was busy");
    }
    try (r) {
      await(agent.deleted); // by the retry, 1 s later
      assertEquals(Set.of(), images);
      assertEquals(List.of("7.3/7-0"), deletes);
    }
  }

  /** A coordinator daemon whose agent registered by a heartbeat, and what it dialled. */
  private record Registered(Coordinator coordinator, Server server, List<ManagedChannel> dialled)
      implements AutoCloseable {
    @Override
    public void close() {
      coordinator.close();
      dialled.forEach(ManagedChannel::shutdownNow);
      server.shutdownNow();
    }
  }

  private static Registered register(Catalog catalog, Agent agent) throws Exception {
    String name = "sweep-agent-" + System.nanoTime();
    Server server =
        InProcessServerBuilder.forName(name).directExecutor().addService(agent).build().start();
    List<ManagedChannel> dialled = Collections.synchronizedList(new ArrayList<>());
    AgentDirectory agents =
        new AgentDirectory(
            Clock.systemUTC(),
            Duration.ofMinutes(1),
            address -> {
              ManagedChannel ch = InProcessChannelBuilder.forName(address).directExecutor().build();
              dialled.add(ch);
              return ch;
            },
            (node, ch) -> new AgentClient(node, ch, Duration.ofSeconds(5), Duration.ofSeconds(5)));
    Coordinator coordinator =
        new Coordinator(
            catalog,
            agents,
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC());
    coordinator.heartbeat(HeartbeatRequest.newBuilder().setNode("n1").setAddress(name).build());
    return new Registered(coordinator, server, dialled);
  }
}
