package io.cohort.coordinator;

import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.GetVhostRequest;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.KillVhostRequest;
import io.cohort.proto.v1.KillVhostResponse;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.ReadOutputRequest;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.VhostPlacement;
import io.cohort.proto.v1.VhostState;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A node agent for the coordinator's tests, served over in-process gRPC: it records every call in
 * {@code calls} ("prepare [7-0]", "dump 7-0 stop", "resume 7-0", "seal 7-0", "finish 7-0 ABORT",
 * "kill 7-0"), fails the dumps of {@code failDump}, holds every dump until {@code hang} opens (if
 * given) and runs every vhost. {@link #onPrepare} and {@link #requests} let a test look inside.
 */
final class ScriptedAgent extends AgentGrpc.AgentImplBase {
  final String node;
  final List<String> calls;
  final Set<String> failDump;
  final CountDownLatch hang;

  /** GetVhost and KillVhost never answer (a node cut off the network, not yet called down). */
  volatile boolean silentQueries;

  /** FinishCheckpoint fails as a call to an agent that died would. */
  volatile boolean failFinish;

  /** Runs at each PrepareCheckpoint, before it answers. */
  volatile Runnable onPrepare = () -> {};

  /** Every barrier request received, in order. */
  final List<Object> requests = java.util.Collections.synchronizedList(new java.util.ArrayList<>());

  ScriptedAgent(String node, List<String> calls, Set<String> failDump, CountDownLatch hang) {
    this.node = node;
    this.calls = calls;
    this.failDump = failDump;
    this.hang = hang;
  }

  private static <T> void answer(StreamObserver<T> o, T response) {
    o.onNext(response);
    o.onCompleted();
  }

  @Override
  public void prepareCheckpoint(
      PrepareCheckpointRequest r, StreamObserver<PrepareCheckpointResponse> o) {
    calls.add("prepare " + r.getVhostIdsList());
    onPrepare.run();
    answer(o, PrepareCheckpointResponse.getDefaultInstance());
  }

  @Override
  public void dumpVhost(DumpVhostRequest r, StreamObserver<DumpVhostResponse> o) {
    calls.add("dump " + r.getVhostId() + (r.getStop() ? " stop" : ""));
    requests.add(r);
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
    answer(o, DumpVhostResponse.newBuilder().setCriuMs(100).setImageBytes(1000).build());
  }

  @Override
  public void resumeVhost(ResumeVhostRequest r, StreamObserver<ResumeVhostResponse> o) {
    calls.add("resume " + r.getVhostId());
    requests.add(r);
    answer(o, ResumeVhostResponse.newBuilder().setFreezeMs(150).build());
  }

  @Override
  public void sealImage(SealImageRequest r, StreamObserver<SealImageResponse> o) {
    calls.add("seal " + r.getVhostId());
    requests.add(r);
    answer(o, SealImageResponse.newBuilder().setManifestSha256("sha-" + r.getVhostId()).build());
  }

  @Override
  public void finishCheckpoint(
      FinishCheckpointRequest r, StreamObserver<FinishCheckpointResponse> o) {
    calls.add(
        "finish "
            + r.getVhostId()
            + " "
            + r.getDecision().name().replace("CHECKPOINT_DECISION_", ""));
    if (failFinish) {
      o.onError(Status.UNAVAILABLE.withDescription("io exception").asRuntimeException());
      return;
    }
    answer(
        o,
        FinishCheckpointResponse.newBuilder()
            .setFreezeMs(r.getDecision().getNumber() * 10)
            .build());
  }

  @Override
  public void getVhost(GetVhostRequest r, StreamObserver<GetVhostResponse> o) {
    if (silentQueries) {
      return; // the call waits for its deadline
    }
    answer(
        o,
        GetVhostResponse.newBuilder()
            .setState(VhostState.VHOST_STATE_RUNNING)
            .setPlacement(VhostPlacement.newBuilder().setVhostId(r.getVhostId()).setNode(node))
            .build());
  }

  @Override
  public void killVhost(KillVhostRequest r, StreamObserver<KillVhostResponse> o) {
    if (silentQueries) {
      return; // the call waits for its deadline
    }
    calls.add("kill " + r.getVhostId());
    answer(o, KillVhostResponse.newBuilder().setState(VhostState.VHOST_STATE_KILLED).build());
  }

  @Override
  public void readOutput(ReadOutputRequest r, StreamObserver<OutputChunk> o) {
    answer(
        o,
        OutputChunk.newBuilder()
            .setData(com.google.protobuf.ByteString.copyFromUtf8("hi"))
            .build());
  }
}
