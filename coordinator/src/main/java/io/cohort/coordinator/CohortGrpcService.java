package io.cohort.coordinator;

import io.cohort.common.Caller;
import io.cohort.common.GrpcErrors;
import io.cohort.common.Ids;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.CheckpointPhase;
import io.cohort.proto.v1.CheckpointProgress;
import io.cohort.proto.v1.CheckpointRequest;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.FenceNodeRequest;
import io.cohort.proto.v1.FenceNodeResponse;
import io.cohort.proto.v1.GetJobRequest;
import io.cohort.proto.v1.GetJobResponse;
import io.cohort.proto.v1.JobEvent;
import io.cohort.proto.v1.KillJobRequest;
import io.cohort.proto.v1.KillJobResponse;
import io.cohort.proto.v1.ListCheckpointsRequest;
import io.cohort.proto.v1.ListCheckpointsResponse;
import io.cohort.proto.v1.ListJobsRequest;
import io.cohort.proto.v1.ListJobsResponse;
import io.cohort.proto.v1.ListNodesRequest;
import io.cohort.proto.v1.ListNodesResponse;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.RemoveCheckpointRequest;
import io.cohort.proto.v1.RemoveCheckpointResponse;
import io.cohort.proto.v1.RestartRequest;
import io.cohort.proto.v1.RestartResponse;
import io.cohort.proto.v1.RunRequest;
import io.cohort.proto.v1.RunResponse;
import io.cohort.proto.v1.SignalJobRequest;
import io.cohort.proto.v1.SignalJobResponse;
import io.cohort.proto.v1.StreamOutputRequest;
import io.cohort.proto.v1.WatchJobRequest;
import io.grpc.Context;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.Iterator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Thin gRPC adapter over {@link Coordinator}: the client API. Each call acts for the {@link Caller}
 * its server's {@link io.cohort.common.CallerInterceptor} put in the call's context: a new job is
 * the caller's; a call that names a job or a checkpoint is refused unless the caller owns it or is
 * root ({@link JobAccess}); lists show a user their own.
 */
public final class CohortGrpcService extends CohortGrpc.CohortImplBase {
  private static final Logger log = LoggerFactory.getLogger(CohortGrpcService.class);
  private final Coordinator coordinator;
  private final JobAccess access;

  public CohortGrpcService(Coordinator coordinator) {
    this.coordinator = coordinator;
    this.access = new JobAccess(coordinator::owner);
  }

  @Override
  public void run(RunRequest req, StreamObserver<RunResponse> out) {
    GrpcErrors.unary(
        out,
        () ->
            RunResponse.newBuilder()
                .setJob(
                    coordinator.run(
                        req.getSpec(),
                        req.getNodesList(),
                        req.getVhosts(),
                        req.getSlots(),
                        req.getStdin(),
                        Caller.current().toOwner()))
                .build());
  }

  /**
   * Streams the barrier's progress. The epoch is not tied to the call: a client that goes away
   * (Ctrl-C, a lost connection, its deadline) is only no longer told, and the checkpoint commits or
   * aborts as it would have; `cohort ps` and `cohort checkpoints` show how it ended. Aborting it
   * instead would have a --stop checkpoint stop the job at its previous checkpoint, and would tie
   * the job to a connection. The call's {@link Context} says at once that the client left (the
   * observer's own isCancelled() only once this method has returned, since gRPC delivers onCancel
   * on the call's executor, which this method holds); a send that fails all the same is taken the
   * same way.
   */
  @Override
  public void checkpoint(CheckpointRequest req, StreamObserver<CheckpointProgress> out) {
    Context context = Context.current();
    boolean[] gone = {false}; // guarded by out
    CheckpointInfo info;
    try {
      access.requireJob(Caller.current(), req.getJobId());
      info =
          coordinator.checkpoint(
              req.getJobId(),
              req.getStop(),
              (phase, message) -> {
                synchronized (out) {
                  if (gone[0]) {
                    return;
                  }
                  try {
                    if (context.isCancelled()) {
                      throw new IllegalStateException("the call was cancelled");
                    }
                    out.onNext(
                        CheckpointProgress.newBuilder()
                            .setPhase(phase)
                            .setMessage(message)
                            .build());
                  } catch (RuntimeException e) {
                    gone[0] = true;
                    log.info(
                        "job-{}: the client of its checkpoint went away ({}); the checkpoint "
                            + "goes on",
                        req.getJobId(),
                        e.getMessage());
                  }
                }
              });
    } catch (RuntimeException e) {
      send(out, () -> out.onError(GrpcErrors.toStatus(e)));
      return;
    }
    send(
        out,
        () -> {
          out.onNext(
              CheckpointProgress.newBuilder()
                  .setPhase(CheckpointPhase.CHECKPOINT_PHASE_DONE)
                  .setMessage("committed")
                  .setResult(info)
                  .build());
          out.onCompleted();
        });
  }

  /** The last messages of a call whose client may have gone: nobody is left to tell. */
  private static void send(StreamObserver<?> out, Runnable last) {
    try {
      synchronized (out) {
        last.run();
      }
    } catch (RuntimeException e) {
      log.debug("client gone before the end of its call: {}", e.toString());
    }
  }

  @Override
  public void listNodes(ListNodesRequest req, StreamObserver<ListNodesResponse> out) {
    GrpcErrors.unary(
        out,
        () ->
            ListNodesResponse.newBuilder()
                .addAllNodes(
                    JobAccess.visibleNodes(
                        Caller.current(), coordinator.nodes(), coordinator.jobs()))
                .build());
  }

  @Override
  public void restart(RestartRequest req, StreamObserver<RestartResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          access.requireTarget(Caller.current(), req.getTarget());
          return coordinator.restart(req.getTarget(), req.getReplace(), req.getNodesList());
        });
  }

  @Override
  public void listJobs(ListJobsRequest req, StreamObserver<ListJobsResponse> out) {
    GrpcErrors.unary(
        out,
        () ->
            ListJobsResponse.newBuilder()
                .addAllJobs(JobAccess.visibleJobs(Caller.current(), coordinator.jobs()))
                .build());
  }

  @Override
  public void getJob(GetJobRequest req, StreamObserver<GetJobResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          access.requireJob(Caller.current(), req.getJobId());
          return GetJobResponse.newBuilder().setJob(coordinator.job(req.getJobId())).build();
        });
  }

  @Override
  public void listCheckpoints(
      ListCheckpointsRequest req, StreamObserver<ListCheckpointsResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          Caller caller = Caller.current();
          if (!req.getJobId().isEmpty()) {
            access.requireJob(caller, req.getJobId());
          }
          return ListCheckpointsResponse.newBuilder()
              .addAllCheckpoints(
                  access.visibleCheckpoints(caller, coordinator.checkpoints(req.getJobId())))
              .build();
        });
  }

  @Override
  public void removeCheckpoint(
      RemoveCheckpointRequest req, StreamObserver<RemoveCheckpointResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          access.requireCheckpoint(Caller.current(), Ids.requireCheckpoint(req.getCheckpointId()));
          return RemoveCheckpointResponse.newBuilder()
              .addAllWarnings(coordinator.removeCheckpoint(req.getCheckpointId()))
              .build();
        });
  }

  @Override
  public void killJob(KillJobRequest req, StreamObserver<KillJobResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          access.requireJob(Caller.current(), req.getJobId());
          return coordinator.kill(req.getJobId());
        });
  }

  @Override
  public void fenceNode(FenceNodeRequest req, StreamObserver<FenceNodeResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          JobAccess.requireRoot(Caller.current(), "declare a node dead");
          return coordinator.fenceNode(req.getNode());
        });
  }

  @Override
  public void signalJob(SignalJobRequest req, StreamObserver<SignalJobResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          access.requireJob(Caller.current(), req.getJobId());
          return SignalJobResponse.newBuilder()
              .setSignal(coordinator.signal(req.getJobId(), req.getSignal()))
              .build();
        });
  }

  /**
   * Sends the job at each change while the client is ready for more (gRPC's isReady reads the
   * transport; a slow reader is sent the state as it is once it is ready again). The call's {@link
   * Context} tells that the client went away: the observer's isCancelled() would only once this
   * method returned, as gRPC delivers onCancel on the executor this method holds.
   */
  @Override
  public void watchJob(WatchJobRequest req, StreamObserver<JobEvent> out) {
    ServerCallStreamObserver<JobEvent> call = (ServerCallStreamObserver<JobEvent>) out;
    call.setOnCancelHandler(() -> {}); // a send after the client left is dropped, not thrown
    Context context = Context.current();
    try {
      access.requireJob(Caller.current(), req.getJobId());
      coordinator.watch(
          req.getJobId(),
          job ->
              out.onNext(
                  JobEvent.newBuilder()
                      .setJob(job)
                      .setSeenUnixMs(System.currentTimeMillis())
                      .build()),
          context::isCancelled,
          call::isReady);
    } catch (RuntimeException e) {
      send(out, () -> out.onError(GrpcErrors.toStatus(e)));
      return;
    }
    if (!context.isCancelled()) {
      send(out, out::onCompleted);
    }
  }

  /** Relays the head vhost's output from its agent, only as fast as the client reads it. */
  @Override
  public void streamOutput(StreamOutputRequest req, StreamObserver<OutputChunk> out) {
    Iterator<OutputChunk> source;
    try {
      access.requireJob(Caller.current(), req.getJobId());
      source = coordinator.output(req.getJobId(), req.getOffset(), req.getFollow(), req.getOnly());
    } catch (RuntimeException e) {
      out.onError(GrpcErrors.toStatus(e));
      return;
    }
    FlowControlledRelay.start(source, (ServerCallStreamObserver<OutputChunk>) out);
  }
}
