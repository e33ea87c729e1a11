package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.GetVhostRequest;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.KillVhostRequest;
import io.cohort.proto.v1.KillVhostResponse;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.VhostPlacement;
import io.cohort.proto.v1.VhostState;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Queries (ps, job, watch) only observe; a job's record changes only in the reconcile step, under
 * the job's lock. Interleavings of a query with a checkpoint and with a held lock.
 */
class JobReconcileTest {
  @TempDir Path dir;

  private final InProcessAgents inProcess = new InProcessAgents();
  private final List<String> kills = Collections.synchronizedList(new ArrayList<>());

  @AfterEach
  void tearDown() {
    inProcess.close();
  }

  /** An agent whose n-th GetVhost (from 1) answers {@code state.apply(n)}; the rest succeeds. */
  private final class Agent extends AgentGrpc.AgentImplBase {
    final AtomicInteger gets = new AtomicInteger();
    final IntFunction<VhostState> state;

    Agent(IntFunction<VhostState> state) {
      this.state = state;
    }

    @Override
    public void getVhost(GetVhostRequest r, StreamObserver<GetVhostResponse> o) {
      VhostState s = state.apply(gets.incrementAndGet());
      o.onNext(
          GetVhostResponse.newBuilder()
              .setState(s)
              .setPlacement(VhostPlacement.newBuilder().setVhostId(r.getVhostId()).setNode("n1"))
              .build());
      o.onCompleted();
    }

    @Override
    public void killVhost(KillVhostRequest r, StreamObserver<KillVhostResponse> o) {
      kills.add(r.getVhostId());
      o.onNext(KillVhostResponse.newBuilder().setState(VhostState.VHOST_STATE_KILLED).build());
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
    public void sealImage(SealImageRequest r, StreamObserver<SealImageResponse> o) {
      o.onNext(SealImageResponse.getDefaultInstance());
      o.onCompleted();
    }

    @Override
    public void finishCheckpoint(
        FinishCheckpointRequest r, StreamObserver<FinishCheckpointResponse> o) {
      o.onNext(FinishCheckpointResponse.getDefaultInstance());
      o.onCompleted();
    }
  }

  /** Job 7: a running head vhost 7-0 and a worker 7-1, both on n1. */
  private static JobRecord runningJob() {
    return JobRecord.newBuilder()
        .setNextEpoch(1)
        .setInfo(
            JobInfo.newBuilder()
                .setJobId("7")
                .setState(JobState.JOB_STATE_RUNNING)
                .setIncarnation(1)
                .addVhosts(VhostPlacement.newBuilder().setVhostId("7-0").setNode("n1"))
                .addVhosts(VhostPlacement.newBuilder().setVhostId("7-1").setNode("n1")))
        .build();
  }

  private static void await(CountDownLatch latch) throws InterruptedException {
    assertTrue(latch.await(10, TimeUnit.SECONDS), "timed out");
  }

  /**
   * A `ps` reads the record, then its GetVhost is slow; a checkpoint takes epoch 1 meanwhile; then
   * the agent answers that the job has exited. Written back, the `ps`'s stale record would set
   * next_epoch back to 1, and the job's next checkpoint (after a restart) would reuse epoch 1 and
   * overwrite checkpoint 7.1.
   */
  @Test
  void aQueryRacingACheckpointNeverTakesItsEpochBack() throws Exception {
    CountDownLatch psAsked = new CountDownLatch(1);
    CountDownLatch answerPs = new CountDownLatch(1);
    Agent agent =
        new Agent(
            n -> {
              if (n == 1) { // the ps
                psAsked.countDown();
                try {
                  answerPs.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
                return VhostState.VHOST_STATE_EXITED;
              }
              return VhostState.VHOST_STATE_RUNNING;
            });
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(runningJob());
    try (Coordinator coordinator =
        new Coordinator(
            catalog,
            inProcess.serve(Map.of("n1", agent)),
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC())) {
      CompletableFuture<List<JobInfo>> ps = CompletableFuture.supplyAsync(coordinator::jobs);
      await(psAsked);
      CheckpointInfo ckpt = coordinator.checkpoint("7", false, (phase, message) -> {});
      assertEquals(1, ckpt.getEpoch());
      assertEquals(2, catalog.job("7").getNextEpoch());
      answerPs.countDown();
      ps.get(10, TimeUnit.SECONDS);
      assertEquals(
          2,
          catalog.job("7").getNextEpoch(),
          "a query wrote back a stale record: epoch 1 would be used again");
      assertEquals("7.1", catalog.job("7").getInfo().getLatestCheckpoint());
    }
  }

  /**
   * While a checkpoint (or restart, kill) holds the job's lock, queries only look: they report what
   * the agent says but neither write the record nor end vhosts. Once the lock is free, the next
   * query's reconcile step records the end and ends the workers.
   */
  @Test
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  void queriesUnderAHeldLockOnlyObserveAndTheReconcileStepWritesAfterwards() throws Exception {
    Agent agent = new Agent(n -> VhostState.VHOST_STATE_EXITED);
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(runningJob());
    try (Coordinator coordinator =
        new Coordinator(
            catalog,
            inProcess.serve(Map.of("n1", agent)),
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC())) {
      CountDownLatch held = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      CompletableFuture<Void> holder =
          CompletableFuture.runAsync(
              () -> {
                try (Catalog.Hold hold = catalog.lockJob("7")) {
                  held.countDown();
                  release.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              });
      await(held);
      List<JobInfo> jobs =
          CompletableFuture.supplyAsync(coordinator::jobs).get(10, TimeUnit.SECONDS);
      JobInfo one =
          CompletableFuture.supplyAsync(() -> coordinator.job("7")).get(10, TimeUnit.SECONDS);
      List<JobInfo> watched = Collections.synchronizedList(new ArrayList<>());
      CompletableFuture.runAsync(
              () -> coordinator.watch("7", watched::add, () -> false, () -> true))
          .get(10, TimeUnit.SECONDS);
      assertEquals(JobState.JOB_STATE_EXITED, jobs.get(0).getState(), "queries show what is");
      assertEquals(JobState.JOB_STATE_EXITED, one.getState());
      assertEquals(JobState.JOB_STATE_EXITED, watched.get(watched.size() - 1).getState());
      assertEquals(runningJob(), catalog.job("7"), "a query wrote the record");
      assertEquals(List.of(), kills, "a query ended vhosts");
      release.countDown();
      holder.get(10, TimeUnit.SECONDS);

      assertEquals(JobState.JOB_STATE_EXITED, coordinator.job("7").getState());
      assertEquals(JobState.JOB_STATE_EXITED, catalog.job("7").getInfo().getState());
      assertEquals(1, catalog.job("7").getNextEpoch());
      assertTrue(kills.contains("7-1"), "the worker of an ended job is ended: " + kills);
    }
  }
}
