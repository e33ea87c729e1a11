package io.cohort.coordinator;

import io.cohort.proto.v1.CheckpointDecision;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.JobSpec;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.VhostPlacement;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * What the {@link CheckpointBarrier} asks the agents for one (job, epoch): each call builds its
 * request and blocks on the agent (the barrier runs them on its {@code io} executor). No state:
 * which call a phase makes, and what its answer does, is the barrier's.
 *
 * <p>Each request that leaves a vhost waiting for the barrier's next word says how long that may
 * take at most ({@code decision_within_ms}: the phases' own timeouts); an agent that hears nothing
 * for that long and a margin aborts the dump on its own (its decision lease).
 */
final class BarrierCalls {
  private final AgentDirectory agents;
  private final Executor io;
  private final Clock clock;
  private final String ckpt;
  private final long epoch;
  private final JobSpec spec;
  private final boolean stop;
  private final BarrierConfig timeouts;

  BarrierCalls(
      AgentDirectory agents,
      Executor io,
      Clock clock,
      String ckpt,
      long epoch,
      JobSpec spec,
      boolean stop,
      BarrierConfig timeouts) {
    this.agents = agents;
    this.io = io;
    this.clock = clock;
    this.ckpt = ckpt;
    this.epoch = epoch;
    this.spec = spec;
    this.stop = stop;
    this.timeouts = timeouts;
  }

  /**
   * After its dump, a vhost waits for the resume or seal at most for the DUMPING phase (every vhost
   * dumped, or the abort); after its seal, for the commit at most for the RESUMING (or --stop's
   * SEALING) phase and the COMMITTING one.
   */
  private long afterDump() {
    return timeouts.dump().toMillis();
  }

  private long afterSeal() {
    return (stop ? timeouts.dump() : timeouts.dump().plus(timeouts.finish()))
        .plus(timeouts.finish())
        .toMillis();
  }

  /** PREPARING: one call per node, for all its vhosts. */
  PrepareCheckpointResponse prepare(String node, List<String> vhostIds) {
    return agents
        .agent(node)
        .prepare(
            PrepareCheckpointRequest.newBuilder()
                .setCheckpointId(ckpt)
                .setEpoch(epoch)
                .addAllVhostIds(vhostIds)
                .build());
  }

  DumpVhostResponse dump(VhostPlacement v) {
    return agents
        .agent(v.getNode())
        .dump(
            DumpVhostRequest.newBuilder()
                .setCheckpointId(ckpt)
                .setEpoch(epoch)
                .setVhostId(v.getVhostId())
                .setSpec(spec)
                .setStop(stop)
                .setDecisionWithinMs(afterDump())
                .build());
  }

  SealImageResponse seal(VhostPlacement v) {
    return agents
        .agent(v.getNode())
        .seal(
            SealImageRequest.newBuilder()
                .setCheckpointId(ckpt)
                .setEpoch(epoch)
                .setVhostId(v.getVhostId())
                .setDecisionWithinMs(afterSeal())
                .build());
  }

  FinishCheckpointResponse finish(VhostPlacement v, CheckpointDecision d) {
    return agents
        .agent(v.getNode())
        .finish(
            FinishCheckpointRequest.newBuilder()
                .setCheckpointId(ckpt)
                .setEpoch(epoch)
                .setVhostId(v.getVhostId())
                .setDecision(d)
                .build());
  }

  /** A seal's answer and when it came. */
  record Sealed(SealImageResponse response, long atMs) {}

  /** One vhost's answers to the resume and the seal asked at once. */
  record ResumedAndSealed(ResumeVhostResponse resumed, long resumedAtMs, Sealed sealed) {}

  /**
   * RESUMING: resumes the vhost and seals its image at the same time (the seal on {@code io}), and
   * says when each answered.
   */
  ResumedAndSealed resumeAndSeal(VhostPlacement v) {
    CompletableFuture<Sealed> seal =
        CompletableFuture.supplyAsync(() -> new Sealed(seal(v), clock.millis()), io);
    ResumeVhostResponse resumed =
        agents
            .agent(v.getNode())
            .resume(
                ResumeVhostRequest.newBuilder()
                    .setCheckpointId(ckpt)
                    .setEpoch(epoch)
                    .setVhostId(v.getVhostId())
                    .setDecisionWithinMs(afterSeal())
                    .build());
    return new ResumedAndSealed(resumed, clock.millis(), seal.join());
  }
}
