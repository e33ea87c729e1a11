package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.common.GrpcErrors;
import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.ConfigureJobNetworkRequest;
import io.cohort.proto.v1.CreateVhostRequest;
import io.cohort.proto.v1.CreateVhostResponse;
import io.cohort.proto.v1.DeleteImageRequest;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.GetNodeRequest;
import io.cohort.proto.v1.GetNodeResponse;
import io.cohort.proto.v1.GetVhostRequest;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.ImportImageResponse;
import io.cohort.proto.v1.KillVhostRequest;
import io.cohort.proto.v1.KillVhostResponse;
import io.cohort.proto.v1.ListImagesRequest;
import io.cohort.proto.v1.ListImagesResponse;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.ReadOutputRequest;
import io.cohort.proto.v1.ReleaseRestoredRequest;
import io.cohort.proto.v1.RestoreVhostRequest;
import io.cohort.proto.v1.RestoreVhostResponse;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.SignalVhostRequest;
import io.cohort.proto.v1.VerifyImageRequest;
import io.grpc.Channel;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Iterator;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Function;

/**
 * The coordinator's view of one node agent: blocking calls with a deadline each, failures turned
 * into {@link io.cohort.common.CohortException}s that name the node.
 */
final class AgentClient {
  private final String node;
  private final AgentGrpc.AgentBlockingStub stub;

  /** The longest a query of a vhost's state waits: the registry's liveness. */
  static final Duration QUERY = Duration.ofSeconds(3);

  private final Duration shortCall;
  private final Duration longCall;

  AgentClient(String node, Channel channel, Duration shortCall, Duration longCall) {
    this.node = node;
    this.stub = AgentGrpc.newBlockingStub(channel);
    this.shortCall = shortCall;
    this.longCall = longCall;
  }

  String node() {
    return node;
  }

  /**
   * Whether the node's agent is still heard (its heartbeats arrive): set by the {@link
   * AgentDirectory} that learns agents from heartbeats. A call waits no longer than that: a node
   * cut off takes calls it never answers, and a listing or a kill must not wait out a deadline
   * meant for a slow dump.
   */
  private volatile BooleanSupplier heard = () -> true;

  /** Threads that end calls to nodes no longer heard; one is enough, each check is a read. */
  private static final ScheduledExecutorService WATCHDOG =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "cohort-agent-call-watchdog");
            t.setDaemon(true);
            return t;
          });

  void heardWhile(BooleanSupplier heard) {
    this.heard = heard;
  }

  /** A unary call, ended early if the node is no longer heard (see {@link #heard}). */
  private <T> T call(Duration deadline, Function<AgentGrpc.AgentBlockingStub, T> f) {
    Context.CancellableContext ctx = Context.current().withCancellation();
    ScheduledFuture<?> watch =
        WATCHDOG.scheduleWithFixedDelay(
            () -> {
              if (!heard.getAsBoolean()) {
                ctx.cancel(null);
              }
            },
            WATCH_MS,
            WATCH_MS,
            TimeUnit.MILLISECONDS);
    try {
      return ctx.call(
          () -> f.apply(stub.withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS)));
    } catch (StatusRuntimeException e) {
      if (ctx.isCancelled() && !heard.getAsBoolean()) {
        throw new CohortException(
            CohortException.Kind.UNAVAILABLE,
            "node " + node + " stopped answering: its agent is no longer heard (down or cut off)");
      }
      throw GrpcErrors.fromStatus(e, "node " + node);
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw CohortException.internal("call to node " + node + " failed: " + e, e);
    } finally {
      watch.cancel(false);
      ctx.cancel(null);
    }
  }

  private static final long WATCH_MS = 500;

  GetNodeResponse describe() {
    return call(shortCall, s -> s.getNode(GetNodeRequest.getDefaultInstance()));
  }

  CreateVhostResponse createVhost(CreateVhostRequest r) {
    return call(shortCall, s -> s.createVhost(r));
  }

  /**
   * A vhost's state, as {@code ps} and every view ask it: within {@link #QUERY}, so that a node
   * just cut off (not yet called down, which takes the liveness) slows a listing by seconds, not by
   * a call's full deadline; the caller keeps what it knew.
   */
  GetVhostResponse getVhost(String vhostId) {
    return call(
        shortCall.compareTo(QUERY) < 0 ? shortCall : QUERY,
        s -> s.getVhost(GetVhostRequest.newBuilder().setVhostId(vhostId).build()));
  }

  KillVhostResponse kill(String vhostId) {
    return call(
        shortCall, s -> s.killVhost(KillVhostRequest.newBuilder().setVhostId(vhostId).build()));
  }

  void signal(String vhostId, int signal) {
    call(
        shortCall,
        s ->
            s.signalVhost(
                SignalVhostRequest.newBuilder().setVhostId(vhostId).setSignal(signal).build()));
  }

  PrepareCheckpointResponse prepare(PrepareCheckpointRequest r) {
    return call(shortCall, s -> s.prepareCheckpoint(r));
  }

  DumpVhostResponse dump(DumpVhostRequest r) {
    return call(longCall, s -> s.dumpVhost(r));
  }

  ResumeVhostResponse resume(ResumeVhostRequest r) {
    return call(longCall, s -> s.resumeVhost(r));
  }

  SealImageResponse seal(SealImageRequest r) {
    return call(longCall, s -> s.sealImage(r));
  }

  FinishCheckpointResponse finish(FinishCheckpointRequest r) {
    return call(longCall, s -> s.finishCheckpoint(r));
  }

  void verify(VerifyImageRequest r) {
    call(longCall, s -> s.verifyImage(r));
  }

  void configureJobNetwork(ConfigureJobNetworkRequest r) {
    call(shortCall, s -> s.configureJobNetwork(r));
  }

  /** Lets the job's restored vhosts on this node run (see the agent's ReleaseRestored). */
  void releaseRestored(String jobId) {
    call(
        shortCall,
        s -> s.releaseRestored(ReleaseRestoredRequest.newBuilder().setJobId(jobId).build()));
  }

  ImportImageResponse importImage(ImportImageRequest r) {
    return call(longCall, s -> s.importImage(r));
  }

  RestoreVhostResponse restore(RestoreVhostRequest r) {
    return call(longCall, s -> s.restoreVhost(r));
  }

  void deleteImage(String ckpt, String vhostId) {
    call(
        shortCall,
        s ->
            s.deleteImage(
                DeleteImageRequest.newBuilder().setCheckpointId(ckpt).setVhostId(vhostId).build()));
  }

  /** The published images of the node's store (see the sweep, {@link ImageSweeper}). */
  ListImagesResponse listImages() {
    return call(shortCall, s -> s.listImages(ListImagesRequest.getDefaultInstance()));
  }

  /** Output chunks; the iterator throws CohortException on failure. */
  Iterator<OutputChunk> readOutput(ReadOutputRequest r, Duration deadline) {
    Iterator<OutputChunk> it;
    try {
      // A stream outlives this method: it is not watched (its reader's deadline bounds it).
      it = stub.withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS).readOutput(r);
    } catch (StatusRuntimeException e) {
      throw GrpcErrors.fromStatus(e, "node " + node);
    }
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        try {
          return it.hasNext();
        } catch (StatusRuntimeException e) {
          throw GrpcErrors.fromStatus(e, "node " + node);
        }
      }

      @Override
      public OutputChunk next() {
        return it.next();
      }
    };
  }
}
