package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.VhostPlacement;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Takes a job's checkpoint: under the job's lock, reconciles the job (which settles an epoch a
 * stopped coordinator left open), records the next epoch as open (used up even if the barrier
 * aborts; {@link EpochRecovery}), runs the {@link CheckpointBarrier} and records the result; a
 * failed --stop checkpoint stops the job all the same.
 */
final class JobCheckpointer {
  private static final Logger log = LoggerFactory.getLogger(JobCheckpointer.class);

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final JobReconciler reconciler;
  private final PartnerCopies copies;
  private final EpochRecovery epochs;
  private final BarrierConfig barrierConfig;
  private final Clock clock;
  private final Executor io;
  private final ScheduledExecutorService serial;

  JobCheckpointer(
      Catalog catalog,
      AgentDirectory agents,
      JobReconciler reconciler,
      PartnerCopies copies,
      EpochRecovery epochs,
      BarrierConfig barrierConfig,
      Clock clock,
      Executor io,
      ScheduledExecutorService serial) {
    this.catalog = catalog;
    this.agents = agents;
    this.reconciler = reconciler;
    this.copies = copies;
    this.epochs = epochs;
    this.barrierConfig = barrierConfig;
    this.clock = clock;
    this.io = io;
    this.serial = serial;
  }

  /** Runs the barrier for one new epoch; blocks until it is committed or aborted. */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  CheckpointInfo checkpoint(String jobId, boolean stop, CheckpointBarrier.Listener progress) {
    try (Catalog.Hold hold = catalog.lockJob(jobId)) {
      JobRecord rec = reconciler.reconcile(jobId);
      if (rec.getInfo().getState() != JobState.JOB_STATE_RUNNING) {
        throw CohortException.precondition(
            "cannot checkpoint job %s: it is not running (%s)",
            jobId, Coordinator.describe(rec.getInfo()));
      }
      if (rec.hasOpenEpoch()) {
        throw new CohortException(
            CohortException.Kind.UNAVAILABLE,
            String.format(
                "cannot checkpoint job %s yet: checkpoint %s.%d, left unfinished by a coordinator "
                    + "that stopped, is settled but the agents of node(s) %s have not been told "
                    + "(down?); retry once they are back (see `cohort nodes`)",
                jobId,
                jobId,
                rec.getOpenEpoch().getEpoch(),
                String.join(", ", epochs.nodesToTell(rec))));
      }
      long epoch = epochs.nextEpoch(rec);
      // Recorded (and the epoch used up, even if the barrier aborts) before any agent is asked
      // anything: a coordinator that stops mid-barrier leaves it for the next one to settle.
      rec = epochs.open(rec, epoch, stop);
      CheckpointBarrier barrier =
          new CheckpointBarrier(
              rec, epoch, stop, agents, catalog, io, serial, clock, barrierConfig, progress);
      String ckpt = jobId + "." + epoch;
      epochs.running(ckpt, barrier);
      CompletableFuture<CheckpointInfo> outcome = barrier.start();
      outcome.whenComplete((i, e) -> epochs.ended(ckpt));
      CheckpointInfo info;
      Duration limit =
          barrierConfig
              .prepare()
              .plus(barrierConfig.dump().multipliedBy(2))
              .plus(barrierConfig.finish().multipliedBy(4));
      try {
        info = outcome.get(limit.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.TimeoutException e) {
        // The epoch stays open: once the barrier ends, the next reconcile settles it.
        throw new CohortException(
            CohortException.Kind.DEADLINE_EXCEEDED,
            "checkpoint of job "
                + jobId
                + " did not finish within "
                + limit
                + "; see the agent's log");
      } catch (ExecutionException e) {
        CohortException failure =
            e.getCause() instanceof CohortException ce
                ? ce
                : CohortException.internal("checkpoint failed: " + e.getCause(), e.getCause());
        if (stop) {
          throw stopAnyway(rec, failure);
        }
        catalog.saveJob(rec.toBuilder().clearOpenEpoch().build());
        throw failure;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw CohortException.internal("interrupted while checkpointing", e);
      }
      JobInfo.Builder b = rec.getInfo().toBuilder().setLatestCheckpoint(info.getCheckpointId());
      if (stop) {
        b.setState(JobState.JOB_STATE_STOPPED);
        b.clearVhosts().addAllVhosts(info.getVhostsList());
      }
      JobRecord done =
          rec.toBuilder()
              .setInfo(b)
              .clearOpenEpoch()
              .addAllVhostsToEnd(barrier.notStopped())
              .build();
      catalog.saveJob(done);
      if (done.getVhostsToEndCount() > 0) {
        // Ended now if their agent is back, else when it is (a vhost CRIU let go when its agent
        // died runs on, and must not share the job's addresses with a restart).
        reconciler.endLeftVhosts(done);
      }
      // The copies run in the background: neither the job nor the client waits for them.
      return copies.afterCommit(info);
    }
  }

  /**
   * A --stop checkpoint failed (and was discarded): the job is stopped all the same, as asked (its
   * nodes are wanted for something else), and restarts from its previous checkpoint. Vhosts on a
   * node that cannot be reached are ended when it is back. Returns the error to report, which says
   * all this.
   */
  private CohortException stopAnyway(JobRecord rec, CohortException failure) {
    JobInfo info = rec.getInfo();
    JobRecord stopped =
        EpochRecovery.stoppedAtPrevious(rec, catalog).toBuilder().clearOpenEpoch().build();
    String previous = stopped.getInfo().getLatestCheckpoint();
    catalog.saveJob(stopped);
    stopped = reconciler.endLeftVhosts(stopped);
    StringBuilder m =
        new StringBuilder(failure.getMessage())
            .append("\nAs asked (--stop), job ")
            .append(info.getJobId())
            .append(" was stopped all the same: ");
    m.append(
        previous.isEmpty()
            ? "it has no earlier checkpoint, so it cannot be restarted."
            : "`cohort restart "
                + previous
                + "` continues it from its previous checkpoint (what "
                + "it computed since is lost).");
    for (VhostPlacement v : stopped.getVhostsToEndList()) {
      m.append("\nVhost ")
          .append(v.getVhostId())
          .append(" on node ")
          .append(v.getNode())
          .append(" could not be reached; it is ended as soon as that node's agent is back.");
    }
    log.warn(
        "job-{}: --stop checkpoint failed; job stopped at {}",
        info.getJobId(),
        previous.isEmpty() ? "no checkpoint" : previous);
    return new CohortException(failure.kind(), m.toString(), failure);
  }
}
