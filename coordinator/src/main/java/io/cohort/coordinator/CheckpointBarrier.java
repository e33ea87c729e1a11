package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.common.FaultPoints;
import io.cohort.proto.v1.AbandonedDump;
import io.cohort.proto.v1.CheckpointDecision;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.CheckpointPhase;
import io.cohort.proto.v1.CheckpointTimings;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.VhostPlacement;
import java.time.Clock;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The checkpoint barrier of one job for one epoch: a state machine that takes a consistent global
 * checkpoint of every vhost of the job.
 *
 * <pre>
 *   PREPARING -> DUMPING -> [RESUMING] -> SEALING -> COMMITTING -> PUBLISHING | STOPPING -> DONE
 *       \           \           \            \           \
 *        +-----------+-----------+------------+-----------+--> ABORTING -> ABORTED
 * </pre>
 *
 * <ul>
 *   <li>PREPARING: every agent checks its vhosts are healthy and it has room for the images.
 *   <li>DUMPING: every vhost is frozen and dumped by CRIU; CRIU's post-dump hook keeps each one
 *       frozen after its image is written. No vhost runs again before every vhost is captured: a
 *       message sent after one resumed could otherwise be received by another before its dump, an
 *       inconsistent cut.
 *   <li>RESUMING (checkpoint-and-continue only): every vhost is captured, so all resume; the job's
 *       freeze ends here, before the slow part.
 *   <li>SEALING (or the seal within RESUMING): agents digest (sha256) and sync the images, write
 *       their manifests and publish each image: one atomic rename from the pending directory to
 *       IMAGES/CKPT/VHOST, before the record, so the record only ever names durable images.
 *   <li>COMMITTING: the coordinator writes the global record (atomic rename): from now on the
 *       checkpoint exists.
 *   <li>PUBLISHING / STOPPING: agents are told the checkpoint is committed (their images are in
 *       place since the seal; they forget the epoch); with --stop, the still-frozen vhosts are
 *       ended (only now, when their images are durable and recorded).
 * </ul>
 *
 * Any failure or phase timeout before the record is written aborts the epoch: every agent discards
 * its image, published or not, and resumes its vhost if still frozen, and the previous checkpoint
 * stays the latest. An image the abort cannot reach (its agent is down) or that a coordinator crash
 * left behind is listed by no record; {@link ImageSweeper} removes it later. All state changes
 * happen on one serial executor; agent calls run on {@code io} and post their results back tagged
 * with the phase they belong to, so a late answer from an earlier phase is ignored. Time comes from
 * the injected clock. What each call asks an agent is {@link BarrierCalls}'; the fan-out of a
 * phase's calls and its timer are {@link PhaseFanOut}'s.
 *
 * <p>Every step on the serial executor runs through {@link #guarded}, the one place that catches
 * what a phase throws (a broken listener, a client stream cancelled between a check and a send, a
 * bug) and turns it into the abort, as Ratis' {@code LeaderElection.run()} does: no exception can
 * leave vhosts frozen by CRIU's post-dump hook. Progress goes through {@link #report}, which lets a
 * listener failure abort a phase before the commit but never the abort itself nor the PUBLISHING or
 * STOPPING of a committed checkpoint: once aborting, ABORT reaches every agent whatever the
 * listener does.
 */
final class CheckpointBarrier {
  private static final Logger log = LoggerFactory.getLogger(CheckpointBarrier.class);

  /** Where the barrier reports progress (phase entered, human message). */
  interface Listener {
    void onPhase(CheckpointPhase phase, String message);
  }

  private final JobRecord job;
  private final long epoch;
  private final String ckpt;
  private final boolean stop;
  private final Catalog catalog;
  private final AgentDirectory agents;
  private final ScheduledExecutorService serial;
  private final Clock clock;
  private final BarrierConfig timeouts;
  private final Listener listener;
  private final String who;
  private final BarrierCalls calls;
  private final PhaseFanOut fanOut;
  private final CompletableFuture<CheckpointInfo> result = new CompletableFuture<>();

  /**
   * --stop: vhosts whose agent did not take the COMMIT_STOP (it died, and CRIU's hook let the vhost
   * go on; or it cannot be reached): the job is stopped all the same, so they are to be ended.
   */
  private final Set<VhostPlacement> notStopped = ConcurrentHashMap.newKeySet();

  // State below is touched only on `serial`.
  private BarrierPhase phase;
  private final Set<String> dumpRequested = new HashSet<>();
  private final Map<String, SealImageResponse> sealed = new HashMap<>();
  private long imageBytes;
  private long freezeMs;
  private CohortException failure;
  private final long startMs;
  private long phaseStartMs;
  private final CheckpointTimings.Builder timings = CheckpointTimings.newBuilder();
  private CheckpointInfo committed;

  CheckpointBarrier(
      JobRecord job,
      long epoch,
      boolean stop,
      AgentDirectory agents,
      Catalog catalog,
      Executor io,
      ScheduledExecutorService serial,
      Clock clock,
      BarrierConfig timeouts,
      Listener listener) {
    this.job = job;
    this.epoch = epoch;
    this.ckpt = job.getInfo().getJobId() + "." + epoch;
    this.stop = stop;
    this.catalog = catalog;
    this.agents = agents;
    this.serial = serial;
    this.clock = clock;
    this.timeouts = timeouts;
    this.listener = listener;
    this.who = "job-" + job.getInfo().getJobId() + " epoch " + epoch;
    this.startMs = clock.millis();
    this.calls =
        new BarrierCalls(agents, io, clock, ckpt, epoch, job.getInfo().getSpec(), stop, timeouts);
    this.fanOut = new PhaseFanOut(who, io, serial, () -> phase, this::guarded, this::fail);
  }

  /** After a committed --stop: the vhosts that may still run, to be ended (see notStopped). */
  List<VhostPlacement> notStopped() {
    return List.copyOf(notStopped);
  }

  /** Starts the barrier; the future completes with the committed checkpoint or the abort reason. */
  CompletableFuture<CheckpointInfo> start() {
    onSerial(this::enterPreparing);
    ScheduledFuture<?> watch =
        serial.scheduleWithFixedDelay(() -> guarded(this::watchAgents), 1, 1, TimeUnit.SECONDS);
    result.whenComplete((r, e) -> watch.cancel(false));
    return result;
  }

  /**
   * Before the commit, an agent of the job unheard for {@link BarrierConfig#silence} (its node
   * down, cut off, or its agent dead) aborts the epoch: the job's vhosts elsewhere need not stay
   * frozen until the phase's timeout, and the silent node's own vhosts are let go by its decision
   * lease (or, its agent dead, by CRIU's hook).
   */
  private void watchAgents() {
    if (phase == null
        || phase.committed()
        || phase == BarrierPhase.ABORTING
        || phase == BarrierPhase.ABORTED) {
      return;
    }
    agents
        .unheard(vhosts().stream().map(VhostPlacement::getNode).toList(), timeouts.silence())
        .ifPresent(
            node -> fail(AgentDirectory.unheardDuring(node, agents.silentMillis(node), phase)));
  }

  /**
   * An agent ended its dump of this epoch on its own (its decision lease ran out, or it restarted):
   * the epoch aborts now rather than at its phase's timeout. After the commit it is only logged.
   */
  void abandonedBy(String node, AbandonedDump d) {
    onSerial(
        () ->
            fail(
                new CohortException(
                    CohortException.Kind.ABORTED,
                    String.format(
                        "the agent of node %s ended its dump of vhost %s on its own (%s)",
                        node, d.getVhostId(), d.getReason()))));
  }

  private List<VhostPlacement> vhosts() {
    return job.getInfo().getVhostsList();
  }

  // ------------------------------------------------------------------ phases

  private void enterPreparing() {
    transition(
        BarrierPhase.PREPARING,
        CheckpointPhase.CHECKPOINT_PHASE_PREPARING,
        "checking " + vhosts().size() + " vhost(s)",
        timeouts.prepare());
    Map<String, List<String>> byNode =
        vhosts().stream()
            .collect(
                Collectors.groupingBy(
                    VhostPlacement::getNode,
                    Collectors.mapping(VhostPlacement::getVhostId, Collectors.toList())));
    FaultPoints.reach("coordinator.prepare", ckpt);
    allOf(
        BarrierPhase.PREPARING,
        byNode.keySet(),
        node -> () -> calls.prepare(node, byNode.get(node)),
        (node, r) -> {},
        this::enterDumping);
  }

  private void enterDumping() {
    timings.setPrepareMs(clock.millis() - phaseStartMs);
    transition(
        BarrierPhase.DUMPING,
        CheckpointPhase.CHECKPOINT_PHASE_DUMPING,
        "freezing and dumping " + vhosts().size() + " vhost(s)",
        timeouts.dump());
    vhosts().forEach(v -> dumpRequested.add(v.getVhostId()));
    allOf(
        BarrierPhase.DUMPING,
        vhosts(),
        v -> () -> calls.dump(v),
        (v, r) -> {
          imageBytes += r.getImageBytes();
          timings.setCriuMs(Math.max(timings.getCriuMs(), r.getCriuMs()));
          report(
              CheckpointPhase.CHECKPOINT_PHASE_DUMPING,
              String.format(
                  "vhost %s dumped: %.1f MB in %d ms",
                  v.getVhostId(), r.getImageBytes() / 1e6, r.getCriuMs()));
        },
        () -> {
          timings.setDumpMs(clock.millis() - phaseStartMs);
          if (stop) {
            enterSealing();
          } else {
            enterResuming();
          }
        });
  }

  /**
   * Resumes every vhost and seals its image at the same time: CRIU has written and closed every
   * image file when it reaches its post-dump hook, so digesting and syncing need not wait for it to
   * let the tasks go and exit (a --stop checkpoint seals with the tasks still held).
   */
  private void enterResuming() {
    transition(
        BarrierPhase.RESUMING,
        CheckpointPhase.CHECKPOINT_PHASE_RESUMING,
        String.format(
            "every vhost is captured; resuming the job while digesting and syncing %.1f MB of images",
            imageBytes / 1e6),
        timeouts.dump().plus(timeouts.finish()));
    long start = phaseStartMs;
    allOf(
        BarrierPhase.RESUMING,
        vhosts(),
        v -> () -> calls.resumeAndSeal(v),
        (v, r) -> {
          freezeMs = Math.max(freezeMs, r.resumed().getFreezeMs());
          timings.setResumeMs(Math.max(timings.getResumeMs(), r.resumedAtMs() - start));
          timings.setSealMs(Math.max(timings.getSealMs(), r.sealed().atMs() - start));
          sealed.put(v.getVhostId(), r.sealed().response());
        },
        this::enterCommitting);
  }

  /** A --stop checkpoint's seal: the vhosts stay frozen until the record is written. */
  private void enterSealing() {
    transition(
        BarrierPhase.SEALING,
        CheckpointPhase.CHECKPOINT_PHASE_SEALING,
        String.format("digesting and syncing %.1f MB of images", imageBytes / 1e6),
        timeouts.dump());
    allOf(
        BarrierPhase.SEALING,
        vhosts(),
        v -> () -> calls.seal(v),
        (v, r) -> sealed.put(v.getVhostId(), r),
        () -> {
          timings.setSealMs(clock.millis() - phaseStartMs);
          enterCommitting();
        });
  }

  private void enterCommitting() {
    transition(
        BarrierPhase.COMMITTING,
        CheckpointPhase.CHECKPOINT_PHASE_COMMITTING,
        "writing the global checkpoint record",
        timeouts.finish());
    long t0 = clock.millis();
    CheckpointInfo.Builder info =
        CheckpointRecords.of(job.getInfo(), epoch, stop, imageBytes, sealed, clock.millis());
    FaultPoints.reach("coordinator.commit", ckpt);
    try {
      catalog.commitCheckpoint(info.build());
    } catch (RuntimeException e) {
      fail(e);
      return;
    }
    timings.setCommitMs(clock.millis() - t0);
    committed = info.build();
    enterPublishing();
  }

  private void enterPublishing() {
    BarrierPhase next = stop ? BarrierPhase.STOPPING : BarrierPhase.PUBLISHING;
    transition(
        next,
        stop ? CheckpointPhase.CHECKPOINT_PHASE_STOPPING : CheckpointPhase.CHECKPOINT_PHASE_DONE,
        "checkpoint " + ckpt + " committed" + inflight() + (stop ? "; stopping the job" : ""),
        timeouts.finish());
    CheckpointDecision decision =
        stop
            ? CheckpointDecision.CHECKPOINT_DECISION_COMMIT_STOP
            : CheckpointDecision.CHECKPOINT_DECISION_COMMIT_RESUME;
    FaultPoints.reach("coordinator.publish", ckpt);
    // The checkpoint is committed and its images were published at the seal: an agent that fails
    // to take the decision (or to stop its vhost) is reported, and the checkpoint is kept.
    allOf(
        next,
        vhosts(),
        v ->
            () -> {
              try {
                return calls.finish(v, decision);
              } catch (RuntimeException e) {
                if (stop) {
                  notStopped.add(v);
                }
                throw e;
              }
            },
        (v, r) -> freezeMs = Math.max(freezeMs, r.getFreezeMs()),
        () -> {
          timings.setPublishMs(clock.millis() - phaseStartMs);
          done();
        });
  }

  /** What the overlay recorded, for the progress line (nothing for a job on one node). */
  private String inflight() {
    boolean spans = vhosts().stream().map(VhostPlacement::getNode).distinct().count() > 1;
    return !spans
        ? ""
        : String.format(
            " (%d packets in flight recorded, %d bytes)",
            committed.getInflightPackets(), committed.getInflightBytes());
  }

  private void done() {
    timings.setFreezeMs(freezeMs).setTotalMs(clock.millis() - startMs);
    transition(
        BarrierPhase.DONE,
        CheckpointPhase.CHECKPOINT_PHASE_DONE,
        "checkpoint " + ckpt + " done",
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
    if (phase == BarrierPhase.ABORTING || phase == BarrierPhase.ABORTED) {
      log.warn("{}: {} while aborting (ignored, the abort goes on): {}", who, phase, t.toString());
      return;
    }
    if (phase.committed()) {
      // The record is written and names images published at the seal: the checkpoint exists
      // whatever happens to this phase.
      log.warn("{}: {} after the commit: {}", who, phase, t.toString());
      if (committed != null && !result.isDone()) {
        result.complete(committed.toBuilder().setTimings(timings).build());
      }
      return;
    }
    failure =
        t instanceof CohortException ce
            ? ce
            : CohortException.internal(String.valueOf(t.getMessage()), t);
    transition(
        BarrierPhase.ABORTING,
        CheckpointPhase.CHECKPOINT_PHASE_ABORTING,
        "aborting: " + failure.getMessage(),
        timeouts.finish());
    List<VhostPlacement> asked =
        vhosts().stream().filter(v -> dumpRequested.contains(v.getVhostId())).toList();
    allOf(
        BarrierPhase.ABORTING,
        asked,
        v -> () -> calls.finish(v, CheckpointDecision.CHECKPOINT_DECISION_ABORT),
        (v, r) -> {},
        this::aborted);
  }

  private void aborted() {
    transition(BarrierPhase.ABORTED, CheckpointPhase.CHECKPOINT_PHASE_DONE, "aborted", null);
    result.completeExceptionally(
        new CohortException(
            failure.kind(),
            "checkpoint "
                + ckpt
                + " was aborted and discarded; "
                + (stop ? "" : "the job carries on and ")
                + "its earlier checkpoints are unchanged. Reason: "
                + failure.getMessage(),
            failure));
  }

  // ------------------------------------------------------------------ plumbing

  /** Runs a step on the serial executor, guarded. */
  private void onSerial(Runnable step) {
    serial.execute(() -> guarded(step));
  }

  /**
   * The one place where a step's failure is caught: whatever it throws aborts the epoch (before the
   * commit), so nothing a phase does can skip the abort.
   */
  private void guarded(Runnable step) {
    try {
      step.run();
    } catch (Throwable t) {
      try {
        fail(t);
      } catch (Throwable abortFailed) {
        // fail() does not throw (its reports are guarded); should it all the same, the caller
        // must not wait for ever.
        log.error("{}: the abort itself failed", who, abortFailed);
        result.completeExceptionally(abortFailed);
      }
    }
  }

  /**
   * Reports progress. A listener that throws before the commit aborts the phase (the thrown
   * exception goes to {@link #guarded}); while aborting or after the commit its failure is only
   * logged, so that ABORT still reaches every agent and COMMIT every agent of a committed
   * checkpoint.
   */
  private void report(CheckpointPhase reported, String message) {
    try {
      listener.onPhase(reported, message);
    } catch (RuntimeException e) {
      if (phase == BarrierPhase.ABORTING || phase == BarrierPhase.ABORTED || phase.committed()) {
        log.warn("{}: progress listener failed in {} (ignored): {}", who, phase, e.toString());
        return;
      }
      throw e;
    }
  }

  /**
   * Asks every target of a phase in parallel ({@link PhaseFanOut#allOf}): a failure aborts, except
   * in the abort itself and after the commit, where it is logged and counted as an answer, so the
   * abort always completes and every agent hears of a commit.
   */
  private <K, T> void allOf(
      BarrierPhase asked,
      Collection<K> targets,
      Function<K, Supplier<T>> call,
      BiConsumer<K, T> each,
      Runnable then) {
    boolean tolerant = asked == BarrierPhase.ABORTING || asked.committed();
    fanOut.allOf(asked, tolerant, targets, call, each, then);
  }

  private void transition(
      BarrierPhase next, CheckpointPhase reported, String message, Duration timeout) {
    if (phase != null && !phase.mayGoTo(next)) {
      throw new IllegalStateException(who + ": illegal transition " + phase + " -> " + next);
    }
    log.info("{}: {} -> {}", who, phase == null ? "START" : phase, next);
    phase = next;
    phaseStartMs = clock.millis();
    fanOut.time(next, timeout);
    report(reported, message);
  }
}
