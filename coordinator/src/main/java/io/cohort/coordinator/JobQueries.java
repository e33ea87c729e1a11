package io.cohort.coordinator;

import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.OutputStream;
import io.cohort.proto.v1.ReadOutputRequest;
import io.cohort.proto.v1.VhostPlacement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * The read side: `ps`, `job`, `watch`, `checkpoints`, `logs`. Queries take no lock and write
 * nothing; what they show is the record as the {@link JobObserver} sees it now. When that differs
 * from the record (the job ended), they hand the job to the {@link JobReconciler}, which re-reads
 * and writes under the job's lock, or leaves it to whoever holds the lock.
 */
final class JobQueries {
  private static final Duration FOLLOW_DEADLINE = Duration.ofDays(30);

  /** How often {@link #watch} checks a job: right after a change, and at most. */
  private static final long WATCH_MIN_INTERVAL_MS = 250;

  private static final long WATCH_MAX_INTERVAL_MS = 2000;

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final JobObserver observer;
  private final JobReconciler reconciler;
  private final EpochRecovery epochs;

  JobQueries(
      Catalog catalog,
      AgentDirectory agents,
      JobObserver observer,
      JobReconciler reconciler,
      EpochRecovery epochs) {
    this.catalog = catalog;
    this.agents = agents;
    this.observer = observer;
    this.reconciler = reconciler;
    this.epochs = epochs;
  }

  JobInfo job(String jobId) {
    return shown(view(catalog.job(jobId)));
  }

  List<JobInfo> jobs() {
    List<JobInfo> out = new ArrayList<>();
    for (JobRecord r : catalog.jobs()) {
      out.add(shown(view(r)));
    }
    return out;
  }

  /**
   * The job as shown: a running job's vhosts on nodes that cannot be reached now are named, so that
   * one node down or not registered yet makes only its vhosts unknown, never the whole listing.
   */
  private JobInfo shown(JobRecord rec) {
    JobInfo info = rec.getInfo();
    if (info.getState() != JobState.JOB_STATE_RUNNING) {
      return info;
    }
    List<String> unreachable =
        info.getVhostsList().stream()
            .map(VhostPlacement::getNode)
            .distinct()
            .filter(n -> !agents.isAlive(n))
            .toList();
    return unreachable.isEmpty()
        ? info
        : info.toBuilder().addAllUnreachableNodes(unreachable).build();
  }

  List<CheckpointInfo> checkpoints(String jobId) {
    if (!jobId.isEmpty()) {
      catalog.job(jobId); // NOT_FOUND for an unknown job
    }
    return catalog.checkpoints(jobId);
  }

  /**
   * The job as it is now; a change seen, or an epoch a stopped coordinator left open, goes to the
   * reconcile step, not into the catalog.
   */
  private JobRecord view(JobRecord rec) {
    JobRecord seen = observer.observe(rec);
    if (!JobObserver.drifted(rec, seen) && !epochs.leftOpen(rec)) {
      return seen;
    }
    return reconciler.tryReconcile(rec.getInfo().getJobId()).orElse(seen);
  }

  /**
   * Sends the job as it is, then again at each change, until it has ended (exited, killed, lost) or
   * {@code cancelled}. Checks 250 ms after a change, then less and less often, up to every {@link
   * #WATCH_MAX_INTERVAL_MS} ms: each check asks the head vhost's agent, and on a busy node checking
   * four times a second slowed a one-node MPI ping-pong by 15-27 %. While the reader is not {@code
   * ready} for more, it neither checks nor sends: a slow reader gets the state as it is when it is
   * ready again, and nothing piles up for it.
   */
  void watch(
      String jobId, Consumer<JobInfo> sink, BooleanSupplier cancelled, BooleanSupplier ready) {
    JobInfo last = null;
    long interval = WATCH_MIN_INTERVAL_MS;
    while (!cancelled.getAsBoolean()) {
      if (ready.getAsBoolean()) {
        JobInfo now = job(jobId);
        if (!now.equals(last)) {
          sink.accept(now);
          last = now;
          interval = WATCH_MIN_INTERVAL_MS;
        } else {
          interval = Math.min(WATCH_MAX_INTERVAL_MS, interval * 3 / 2);
        }
        if (JobObserver.ended(now.getState())) {
          return;
        }
      } else {
        interval = Math.min(WATCH_MAX_INTERVAL_MS, interval * 3 / 2);
      }
      try {
        Thread.sleep(interval);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /**
   * The job's output from {@code offset}, read from its head vhost's agent as the caller pulls it;
   * with follow, until the job stops running. The caller pulls only as fast as its reader takes
   * (see {@link FlowControlledRelay}), and the agent's stream waits in turn.
   */
  Iterator<OutputChunk> output(String jobId, long offset, boolean follow, OutputStream only) {
    VhostPlacement head = job(jobId).getVhosts(0);
    return agents
        .agent(head.getNode())
        .readOutput(
            ReadOutputRequest.newBuilder()
                .setVhostId(head.getVhostId())
                .setOffset(offset)
                .setFollow(follow)
                .setOnly(only)
                .build(),
            follow ? FOLLOW_DEADLINE : Duration.ofMinutes(5));
  }
}
