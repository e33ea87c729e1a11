package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.AbandonedDump;
import io.cohort.proto.v1.CheckpointDecision;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.EpochOutcome;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.OpenEpoch;
import io.cohort.proto.v1.VhostPlacement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checkpoint epochs a coordinator began and never finished because it stopped mid-barrier. Each
 * epoch is recorded in its job's record ({@code open_epoch}, with {@code next_epoch}) before any
 * agent is asked to freeze, and cleared when its barrier commits or aborts; while it runs, it is
 * {@linkplain #running live} here. An open epoch that no barrier of this coordinator runs is
 * settled by {@link #settle}, under the job's lock (the first step of {@link
 * JobReconciler#reconcile}):
 *
 * <ol>
 *   <li>Its outcome is decided once, and written before anything else: committed if its checkpoint
 *       record exists (the record is the commit), else aborted. It is applied to the job as the
 *       barrier would have: a --stop epoch stops the job either way, at this checkpoint or, as a
 *       failed --stop does, at the previous one, and its vhosts are left to end where they still
 *       run ({@code vhosts_to_end}).
 *   <li>Every vhost's agent is told (FinishCheckpoint: commit, or abort and discard the image),
 *       each as soon as its node can be reached; the record keeps the vhosts not told yet.
 * </ol>
 *
 * An agent whose decision lease ran out first did the same on its own (keeping a sealed image for
 * this word): whichever side notices first, the outcome is the same.
 */
final class EpochRecovery {
  private static final Logger log = LoggerFactory.getLogger(EpochRecovery.class);

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final Clock clock;

  /** The barriers running in this coordinator, by checkpoint id. */
  private final Map<String, CheckpointBarrier> live = new ConcurrentHashMap<>();

  EpochRecovery(Catalog catalog, AgentDirectory agents, Clock clock) {
    this.catalog = catalog;
    this.agents = agents;
    this.clock = clock;
  }

  /**
   * The next epoch of a job: never one handed out before (the counter, an epoch left open, a
   * recorded checkpoint).
   */
  long nextEpoch(JobRecord rec) {
    long next = Math.max(1, rec.getNextEpoch());
    if (rec.hasOpenEpoch()) {
      next = Math.max(next, rec.getOpenEpoch().getEpoch() + 1);
    }
    for (CheckpointInfo c : catalog.checkpoints(rec.getInfo().getJobId())) {
      next = Math.max(next, c.getEpoch() + 1);
    }
    return next;
  }

  /**
   * Records a new epoch as open, with the counter past it, before any agent is asked anything. The
   * caller holds the job's lock. Returns the record saved.
   */
  JobRecord open(JobRecord rec, long epoch, boolean stop) {
    JobRecord opened =
        rec.toBuilder()
            .setNextEpoch(epoch + 1)
            .setOpenEpoch(
                OpenEpoch.newBuilder()
                    .setEpoch(epoch)
                    .setStop(stop)
                    .setStartedUnixMs(clock.millis())
                    .addAllVhosts(rec.getInfo().getVhostsList()))
            .build();
    catalog.saveJob(opened);
    return opened;
  }

  /** {@code barrier} runs {@code ckpt} here until {@link #ended}. */
  void running(String ckpt, CheckpointBarrier barrier) {
    live.put(ckpt, barrier);
  }

  /** The barrier of {@code ckpt} committed or aborted. */
  void ended(String ckpt) {
    live.remove(ckpt);
  }

  /** An epoch left open: recorded, and no barrier of this coordinator runs it. */
  boolean leftOpen(JobRecord rec) {
    return rec.hasOpenEpoch() && !live.containsKey(checkpointOf(rec));
  }

  /** The nodes whose agents an epoch left open still has to tell. */
  List<String> nodesToTell(JobRecord rec) {
    if (!leftOpen(rec)) {
      return List.of();
    }
    OpenEpoch open = rec.getOpenEpoch();
    List<VhostPlacement> vhosts =
        open.getOutcome() == EpochOutcome.EPOCH_OUTCOME_UNSPECIFIED
            ? open.getVhostsList()
            : open.getUntoldList();
    return vhosts.stream().map(VhostPlacement::getNode).distinct().toList();
  }

  /**
   * An agent ended a dump on its own (its lease ran out, or it found it abandoned at its start): a
   * barrier still running that epoch aborts at once instead of waiting for its phase's timeout.
   */
  void abandoned(String node, AbandonedDump d) {
    CheckpointBarrier b = live.get(d.getCheckpointId());
    if (b != null) {
      b.abandonedBy(node, d);
    } else {
      log.info(
          "node {} ended {}/{} on its own ({}); no barrier runs it here",
          node,
          d.getCheckpointId(),
          d.getVhostId(),
          d.getReason());
    }
  }

  /**
   * Settles the job's epoch if it was left open (see the class comment); the caller holds the job's
   * lock. Returns the record as saved.
   */
  JobRecord settle(JobRecord rec) {
    if (!leftOpen(rec)) {
      return rec;
    }
    if (rec.getOpenEpoch().getOutcome() == EpochOutcome.EPOCH_OUTCOME_UNSPECIFIED) {
      rec = decide(rec);
      catalog.saveJob(rec);
    }
    OpenEpoch open = rec.getOpenEpoch();
    List<VhostPlacement> untold = new ArrayList<>();
    for (VhostPlacement v : open.getUntoldList()) {
      if (!tell(rec, v)) {
        untold.add(v);
      }
    }
    JobRecord.Builder b = rec.toBuilder();
    if (untold.isEmpty()) {
      b.clearOpenEpoch();
      log.info("job-{}: checkpoint {} settled with every agent", jobOf(rec), checkpointOf(rec));
    } else {
      b.setOpenEpoch(open.toBuilder().clearUntold().addAllUntold(untold));
    }
    JobRecord settled = b.build();
    if (!settled.equals(rec)) {
      catalog.saveJob(settled);
    }
    return settled;
  }

  /** The outcome: committed if the checkpoint's record exists; applied to the job. */
  private JobRecord decide(JobRecord rec) {
    OpenEpoch open = rec.getOpenEpoch();
    String ckpt = checkpointOf(rec);
    Optional<CheckpointInfo> record = catalog.checkpoint(ckpt);
    JobRecord.Builder b =
        rec.toBuilder()
            .setOpenEpoch(
                open.toBuilder()
                    .setOutcome(
                        record.isPresent()
                            ? EpochOutcome.EPOCH_OUTCOME_COMMITTED
                            : EpochOutcome.EPOCH_OUTCOME_ABORTED)
                    .clearUntold()
                    .addAllUntold(open.getVhostsList()));
    boolean stops = open.getStop() && rec.getInfo().getState() == JobState.JOB_STATE_RUNNING;
    if (stops && record.isPresent()) {
      b.setInfo(
              rec.getInfo().toBuilder()
                  .setState(JobState.JOB_STATE_STOPPED)
                  .setLatestCheckpoint(ckpt)
                  .clearVhosts()
                  .addAllVhosts(record.get().getVhostsList()))
          .addAllVhostsToEnd(open.getVhostsList());
    } else if (stops) {
      b = stoppedAtPrevious(b.build(), catalog).toBuilder();
    }
    log.warn(
        "job-{}: checkpoint {} was left unfinished by a coordinator that stopped: {}{}",
        jobOf(rec),
        ckpt,
        record.isPresent() ? "its record was written, so it is committed" : "aborted",
        stops ? "; the job is stopped (--stop)" : "");
    return b.build();
  }

  /** Tells one vhost's agent the outcome; false if its node cannot be reached now. */
  private boolean tell(JobRecord rec, VhostPlacement v) {
    if (agents.isDead(v.getNode()) && !agents.isAlive(v.getNode())) {
      return true; // declared dead: its vhosts count as gone
    }
    OpenEpoch open = rec.getOpenEpoch();
    CheckpointDecision d =
        open.getOutcome() == EpochOutcome.EPOCH_OUTCOME_ABORTED
            ? CheckpointDecision.CHECKPOINT_DECISION_ABORT
            : open.getStop()
                ? CheckpointDecision.CHECKPOINT_DECISION_COMMIT_STOP
                : CheckpointDecision.CHECKPOINT_DECISION_COMMIT_RESUME;
    try {
      agents
          .agentForCleanup(v.getNode())
          .finish(
              FinishCheckpointRequest.newBuilder()
                  .setCheckpointId(checkpointOf(rec))
                  .setEpoch(open.getEpoch())
                  .setVhostId(v.getVhostId())
                  .setDecision(d)
                  .build());
      return true;
    } catch (CohortException e) {
      if (e.kind() == CohortException.Kind.UNAVAILABLE
          || e.kind() == CohortException.Kind.DEADLINE_EXCEEDED) {
        return false;
      }
      log.warn(
          "job-{}: {} of {} on {}: {}", jobOf(rec), d, v.getVhostId(), v.getNode(), e.getMessage());
      return true; // it answered: there is nothing more to tell it
    }
  }

  /**
   * A --stop checkpoint that failed: the job is stopped all the same (its nodes are wanted for
   * something else) at its previous checkpoint, or killed without one, and its vhosts are left to
   * end ({@code vhosts_to_end}). Returns the record, not saved.
   */
  static JobRecord stoppedAtPrevious(JobRecord rec, Catalog catalog) {
    JobInfo info = rec.getInfo();
    List<CheckpointInfo> earlier = catalog.checkpoints(info.getJobId());
    String previous = earlier.isEmpty() ? "" : earlier.get(earlier.size() - 1).getCheckpointId();
    return rec.toBuilder()
        .clearVhostsToEnd()
        .addAllVhostsToEnd(info.getVhostsList())
        .setInfo(
            info.toBuilder()
                .setLatestCheckpoint(previous)
                .setState(
                    previous.isEmpty() ? JobState.JOB_STATE_KILLED : JobState.JOB_STATE_STOPPED))
        .build();
  }

  private static String checkpointOf(JobRecord rec) {
    return jobOf(rec) + "." + rec.getOpenEpoch().getEpoch();
  }

  private static String jobOf(JobRecord rec) {
    return rec.getInfo().getJobId();
  }
}
