package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointDecision;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.CheckpointPhase;
import io.cohort.proto.v1.CheckpointTimings;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.VhostPlacement;
import java.time.Clock;
import java.time.Duration;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The checkpoint barrier of one job for one epoch: a state machine that takes a consistent
 * global checkpoint of every vhost of the job.
 *
 * <pre>
 *   PREPARING --all healthy--> DUMPING --all dumped+synced--> COMMITTING --record written--+
 *       |                        |                               |                         |
 *       +------any failure or phase timeout------+---------------+                         v
 *                                                v                          RESUMING or STOPPING
 *                                            ABORTING --all resumed--> ABORTED              |
 *                                                                                          v
 *                                                                                         DONE
 * </pre>
 *
 * No vhost is released before every vhost is captured: agents answer DumpVhost while their
 * vhost is still frozen (CRIU's post-dump hook holds it), and FinishCheckpoint is sent only
 * after the decision. Any failure before the commit record is written aborts the epoch: every
 * agent discards its image and resumes its vhost, and the previous checkpoint stays the latest.
 *
 * <p>All state changes happen on one serial executor ({@code serial}); agent calls run on
 * {@code io} and post their results back to it, tagged with the phase they belong to, so a
 * late answer from an earlier phase is ignored. Time comes from the injected clock.
 */
final class CheckpointBarrier {
  private static final Logger log = LoggerFactory.getLogger(CheckpointBarrier.class);

  enum Phase { PREPARING, DUMPING, COMMITTING, RESUMING, STOPPING, DONE, ABORTING, ABORTED }

  private static final Map<Phase, Set<Phase>> LEGAL = new EnumMap<>(Map.of(
      Phase.PREPARING, EnumSet.of(Phase.DUMPING, Phase.ABORTING),
      Phase.DUMPING, EnumSet.of(Phase.COMMITTING, Phase.ABORTING),
      Phase.COMMITTING, EnumSet.of(Phase.RESUMING, Phase.STOPPING, Phase.ABORTING),
      Phase.RESUMING, EnumSet.of(Phase.DONE),
      Phase.STOPPING, EnumSet.of(Phase.DONE),
      Phase.ABORTING, EnumSet.of(Phase.ABORTED),
      Phase.DONE, EnumSet.noneOf(Phase.class),
      Phase.ABORTED, EnumSet.noneOf(Phase.class)));

  /** Where the barrier reports progress (phase entered, human message). */
  interface Listener {
    void onPhase(CheckpointPhase phase, String message);
  }

  private final JobRecord job;
  private final long epoch;
  private final String ckpt;
  private final boolean stop;
  private final AgentDirectory agents;
  private final Catalog catalog;
  private final Executor io;
  private final ScheduledExecutorService serial;
  private final Clock clock;
  private final BarrierConfig timeouts;
  private final Listener listener;
  private final String who;
  private final CompletableFuture<CheckpointInfo> result = new CompletableFuture<>();

  // State below is touched only on `serial`.
  private Phase phase;
  private ScheduledFuture<?> timer;
  private int pending;
  private final Map<String, DumpVhostResponse> dumped = new HashMap<>();
  private final Set<String> dumpRequested = new java.util.HashSet<>();
  private long freezeMs;
  private CohortException failure;
  private final long startMs;
  private long phaseStartMs;
  private final CheckpointTimings.Builder timings = CheckpointTimings.newBuilder();
  private CheckpointInfo committed;

  CheckpointBarrier(JobRecord job, long epoch, boolean stop, AgentDirectory agents,
      Catalog catalog, Executor io, ScheduledExecutorService serial, Clock clock,
      BarrierConfig timeouts, Listener listener) {
    this.job = job;
    this.epoch = epoch;
    this.ckpt = job.getInfo().getJobId() + "." + epoch;
    this.stop = stop;
    this.agents = agents;
    this.catalog = catalog;
    this.io = io;
    this.serial = serial;
    this.clock = clock;
    this.timeouts = timeouts;
    this.listener = listener;
    this.who = "job-" + job.getInfo().getJobId() + " epoch " + epoch;
    this.startMs = clock.millis();
  }

  /** Starts the barrier; the future completes with the committed checkpoint or the abort reason. */
  CompletableFuture<CheckpointInfo> start() {
    serial.execute(this::enterPreparing);
    return result;
  }

  private List<VhostPlacement> vhosts() {
    return job.getInfo().getVhostsList();
  }

  // ------------------------------------------------------------------ phases

  private void enterPreparing() {
    transition(Phase.PREPARING, CheckpointPhase.CHECKPOINT_PHASE_PREPARING,
        "checking " + vhosts().size() + " vhost(s)", timeouts.prepare());
    Map<String, List<String>> byNode = vhosts().stream().collect(Collectors.groupingBy(
        VhostPlacement::getNode, Collectors.mapping(VhostPlacement::getVhostId, Collectors.toList())));
    pending = byNode.size();
    byNode.forEach((node, ids) -> ask(Phase.PREPARING, node,
        () -> agents.agent(node).prepare(PrepareCheckpointRequest.newBuilder()
            .setCheckpointId(ckpt).setEpoch(epoch).addAllVhostIds(ids).build()),
        (r, err) -> {
          if (err != null) {
            fail(err);
          } else if (--pending == 0) {
            enterDumping();
          }
        }));
  }

  private void enterDumping() {
    timings.setPrepareMs(clock.millis() - phaseStartMs);
    transition(Phase.DUMPING, CheckpointPhase.CHECKPOINT_PHASE_DUMPING,
        "freezing and dumping " + vhosts().size() + " vhost(s)", timeouts.dump());
    pending = vhosts().size();
    for (VhostPlacement v : vhosts()) {
      dumpRequested.add(v.getVhostId());
      ask(Phase.DUMPING, v.getNode(),
          () -> agents.agent(v.getNode()).dump(DumpVhostRequest.newBuilder()
              .setCheckpointId(ckpt).setEpoch(epoch).setVhostId(v.getVhostId())
              .setSpec(job.getInfo().getSpec()).setStop(stop).build()),
          (r, err) -> {
            if (err != null) {
              fail(err);
              return;
            }
            dumped.put(v.getVhostId(), r);
            listener.onPhase(CheckpointPhase.CHECKPOINT_PHASE_DUMPING, String.format(
                "vhost %s dumped: %.1f MB in %d ms", v.getVhostId(), r.getImageBytes() / 1e6,
                r.getCriuMs()));
            if (--pending == 0) {
              enterCommitting();
            }
          });
    }
  }

  private void enterCommitting() {
    timings.setDumpMs(clock.millis() - phaseStartMs);
    transition(Phase.COMMITTING, CheckpointPhase.CHECKPOINT_PHASE_COMMITTING,
        "writing the global checkpoint record", timeouts.finish());
    long t0 = clock.millis();
    CheckpointInfo.Builder info = CheckpointInfo.newBuilder().setCheckpointId(ckpt)
        .setJobId(job.getInfo().getJobId()).setEpoch(epoch).setCreatedUnixMs(clock.millis())
        .addAllVhosts(vhosts().stream().map(v -> v.toBuilder().setPid(0).build()).toList())
        .setStoppedJob(stop);
    long bytes = 0;
    long criuMs = 0;
    for (Map.Entry<String, DumpVhostResponse> e : dumped.entrySet()) {
      info.putManifestSha256(e.getKey(), e.getValue().getManifestSha256());
      bytes += e.getValue().getImageBytes();
      criuMs = Math.max(criuMs, e.getValue().getCriuMs());
    }
    info.setImageBytes(bytes);
    timings.setCriuMs(criuMs);
    try {
      catalog.commitCheckpoint(info.build());
    } catch (RuntimeException e) {
      fail(e);
      return;
    }
    timings.setCommitMs(clock.millis() - t0);
    committed = info.build();
    enterReleasing();
  }

  private void enterReleasing() {
    Phase next = stop ? Phase.STOPPING : Phase.RESUMING;
    transition(next, stop ? CheckpointPhase.CHECKPOINT_PHASE_STOPPING
        : CheckpointPhase.CHECKPOINT_PHASE_RESUMING,
        stop ? "checkpoint " + ckpt + " committed; stopping the job"
            : "checkpoint " + ckpt + " committed; resuming the job", timeouts.finish());
    CheckpointDecision decision = stop ? CheckpointDecision.CHECKPOINT_DECISION_COMMIT_STOP
        : CheckpointDecision.CHECKPOINT_DECISION_COMMIT_RESUME;
    pending = vhosts().size();
    for (VhostPlacement v : vhosts()) {
      ask(next, v.getNode(), () -> agents.agent(v.getNode()).finish(finish(v, decision)),
          (r, err) -> {
            if (err != null) {
              // The checkpoint is committed: a vhost that fails to resume is the job's problem,
              // not the checkpoint's. Report it, keep the checkpoint.
              log.warn("{}: vhost {} did not {} cleanly: {}", who, v.getVhostId(),
                  stop ? "stop" : "resume", err.getMessage());
            } else {
              freezeMs = Math.max(freezeMs, r.getFreezeMs());
            }
            if (--pending == 0) {
              done();
            }
          });
    }
  }

  private void done() {
    timings.setFreezeMs(freezeMs).setTotalMs(clock.millis() - startMs);
    transition(Phase.DONE, CheckpointPhase.CHECKPOINT_PHASE_DONE, "checkpoint " + ckpt + " done",
        null);
    CheckpointInfo info = committed.toBuilder().setTimings(timings).build();
    try {
      catalog.commitCheckpoint(info); // same record, now with the measured timings
    } catch (RuntimeException e) {
      log.warn("{}: cannot add timings to the record: {}", who, e.getMessage());
    }
    result.complete(info);
  }

  /** Any failure before the commit: abort the epoch and resume every vhost. */
  private void fail(Throwable t) {
    if (phase == Phase.ABORTING || phase == Phase.ABORTED || phase == Phase.DONE
        || phase == Phase.RESUMING || phase == Phase.STOPPING) {
      return;
    }
    failure = t instanceof CohortException ce ? ce
        : CohortException.internal(String.valueOf(t.getMessage()), t);
    transition(Phase.ABORTING, CheckpointPhase.CHECKPOINT_PHASE_RESUMING,
        "aborting: " + failure.getMessage(), timeouts.finish());
    pending = dumpRequested.size();
    if (pending == 0) {
      aborted();
      return;
    }
    for (VhostPlacement v : vhosts()) {
      if (!dumpRequested.contains(v.getVhostId())) {
        continue;
      }
      ask(Phase.ABORTING, v.getNode(), () -> agents.agent(v.getNode())
          .finish(finish(v, CheckpointDecision.CHECKPOINT_DECISION_ABORT)), (r, err) -> {
            if (err != null) {
              log.warn("{}: abort on vhost {} failed: {}", who, v.getVhostId(), err.getMessage());
            }
            if (--pending == 0) {
              aborted();
            }
          });
    }
  }

  private void aborted() {
    transition(Phase.ABORTED, CheckpointPhase.CHECKPOINT_PHASE_DONE, "aborted", null);
    result.completeExceptionally(new CohortException(failure.kind(), "checkpoint " + ckpt
        + " was aborted and discarded; the job was " + (stop ? "not stopped" : "resumed")
        + " and its previous checkpoints are unchanged. Reason: " + failure.getMessage(), failure));
  }

  // ------------------------------------------------------------------ plumbing

  private FinishCheckpointRequest finish(VhostPlacement v, CheckpointDecision d) {
    return FinishCheckpointRequest.newBuilder().setCheckpointId(ckpt).setEpoch(epoch)
        .setVhostId(v.getVhostId()).setDecision(d).build();
  }

  /** Runs an agent call on {@code io}; its outcome is handled on {@code serial} if still current. */
  private <T> void ask(Phase asked, String node, Supplier<T> call, BiConsumer<T, Throwable> then) {
    CompletableFuture.supplyAsync(call, io).whenCompleteAsync((r, err) -> {
      if (phase != asked) {
        log.debug("{}: late answer from {} for {} ignored", who, node, asked);
        return;
      }
      Throwable cause = err instanceof java.util.concurrent.CompletionException ? err.getCause() : err;
      then.accept(r, cause);
    }, serial);
  }

  private void transition(Phase next, CheckpointPhase reported, String message, Duration timeout) {
    if (phase != null && !LEGAL.get(phase).contains(next)) {
      throw new IllegalStateException(who + ": illegal transition " + phase + " -> " + next);
    }
    log.info("{}: {} -> {}", who, phase == null ? "START" : phase, next);
    phase = next;
    phaseStartMs = clock.millis();
    if (timer != null) {
      timer.cancel(false);
    }
    if (timeout != null) {
      Phase timed = next;
      timer = serial.schedule(() -> {
        if (phase == timed) {
          fail(new CohortException(CohortException.Kind.DEADLINE_EXCEEDED,
              "phase " + timed + " did not finish within " + timeout));
        }
      }, timeout.toMillis(), TimeUnit.MILLISECONDS);
    }
    listener.onPhase(reported, message);
  }
}
