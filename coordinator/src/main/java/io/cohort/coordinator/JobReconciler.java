package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.VhostPlacement;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one step that brings a job's record in line with what its agents report, under the job's
 * lock: it reads the record, settles a checkpoint epoch a stopped coordinator left open ({@link
 * EpochRecovery}), ends the vhosts a failed --stop checkpoint left running, observes the head
 * vhost, and when the job has ended records that and ends its vhosts. A read-modify-write under the
 * lock, so it never writes back a record older than one a checkpoint saved (an epoch handed out is
 * never handed out again). Queries never write; one that sees a job has changed asks for this step,
 * which leaves the job alone while someone else holds its lock (the holder reconciles it itself).
 */
final class JobReconciler {
  private static final Logger log = LoggerFactory.getLogger(JobReconciler.class);

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final JobObserver observer;
  private final Executor io;

  /**
   * Nodes where some job has something to finish once they are heard: vhosts to end ({@link
   * JobRecord#getVhostsToEndList}), or agents to tell how an epoch left open ended.
   */
  private final Set<String> nodesWithWork = ConcurrentHashMap.newKeySet();

  private final NodeFencing fencing;
  private final EpochRecovery epochs;

  JobReconciler(
      Catalog catalog,
      AgentDirectory agents,
      JobObserver observer,
      NodeFencing fencing,
      EpochRecovery epochs,
      Executor io) {
    this.catalog = catalog;
    this.agents = agents;
    this.observer = observer;
    this.fencing = fencing;
    this.epochs = epochs;
    this.io = io;
    List<String> leftOpen = new ArrayList<>();
    for (JobRecord r : catalog.jobs()) {
      r.getVhostsToEndList().forEach(v -> nodesWithWork.add(v.getNode()));
      nodesWithWork.addAll(epochs.nodesToTell(r));
      if (epochs.leftOpen(r)) {
        leftOpen.add(r.getInfo().getJobId());
      }
    }
    // Decided now, so that queries show the outcome; agents are told as their nodes are heard.
    leftOpen.forEach(id -> io.execute(() -> tryReconcile(id)));
  }

  /**
   * The reconcile step; the caller holds the job's lock. Returns the record as saved (or as it
   * stands, when nothing changed).
   */
  JobRecord reconcile(String jobId) {
    JobRecord settled = epochs.settle(catalog.job(jobId));
    List<String> untold = epochs.nodesToTell(settled);
    nodesWithWork.addAll(untold);
    // A vhost is ended only after its agent heard the epoch's outcome: a --stop vhost still held
    // by CRIU is to be ended by its COMMIT_STOP, after the image it was dumped into is committed.
    JobRecord rec = endLeftVhosts(settled, untold);
    JobRecord seen = observer.observe(rec);
    if (!JobObserver.drifted(rec, seen)) {
      return seen;
    }
    if (JobObserver.ended(seen.getInfo().getState())) {
      List<VhostPlacement> left = endVhosts(seen.getInfo());
      seen = seen.toBuilder().addAllVhostsToEnd(left).build();
      left.forEach(v -> nodesWithWork.add(v.getNode()));
    }
    catalog.saveJob(seen);
    log.info("job-{}: {} -> {}", jobId, rec.getInfo().getState(), seen.getInfo().getState());
    return seen;
  }

  /** The reconcile step if the job's lock is free now; empty if someone holds it. */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  Optional<JobRecord> tryReconcile(String jobId) {
    Optional<Catalog.Hold> hold = catalog.tryLockJob(jobId);
    if (hold.isEmpty()) {
      return Optional.empty();
    }
    try (Catalog.Hold h = hold.get()) {
      return Optional.of(reconcile(jobId));
    }
  }

  /**
   * The job ended with its head vhost: ends the workers (they idle until killed) and tells the
   * head's agent too, whose KillVhost is where an ended vhost's leftovers (its veth) are cleaned;
   * GetVhost only reports. Returns the vhosts whose node is down: left to end when it is back.
   */
  private List<VhostPlacement> endVhosts(JobInfo info) {
    List<VhostPlacement> left = new ArrayList<>();
    for (VhostPlacement v : info.getVhostsList()) {
      try {
        if (!agents.endVhost(v)) {
          left.add(v);
        }
      } catch (CohortException e) {
        log.warn(
            "job-{}: cannot end vhost {}: {}", info.getJobId(), v.getVhostId(), e.getMessage());
      }
    }
    return left;
  }

  /**
   * An agent's heartbeat: if a job has vhosts to end on that node, or an epoch left open whose
   * outcome its agent has not been told, the job is reconciled now. A node declared dead rejoins
   * this way: once every vhost left on it has ended, it takes work again; if one cannot be ended
   * yet, the next heartbeat tries again.
   */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  void nodeBack(String node) {
    boolean rejoin = agents.startRejoin(node);
    if (!nodesWithWork.remove(node) && !rejoin) {
      return;
    }
    io.execute(
        () -> {
          boolean ended = true;
          for (JobRecord r : catalog.jobs()) {
            if (r.getVhostsToEndList().stream().anyMatch(v -> v.getNode().equals(node))
                || epochs.nodesToTell(r).contains(node)) {
              try (Catalog.Hold hold = catalog.lockJob(r.getInfo().getJobId())) {
                // Settles the epoch (telling the agent) before ending what is left on the node.
                JobRecord now = reconcile(r.getInfo().getJobId());
                ended &= now.getVhostsToEndList().stream().noneMatch(v -> v.getNode().equals(node));
              } catch (RuntimeException e) {
                ended = false;
                log.warn("job-{}: {}", r.getInfo().getJobId(), e.getMessage());
              }
            }
          }
          if (rejoin) {
            if (ended) {
              fencing.forget(node);
            } else {
              agents.rejoinFailed(node);
            }
          }
        });
  }

  /**
   * Ends the vhosts left to end ({@code vhosts_to_end}) where their node is heard, even a node
   * declared dead and rejoining; returns the record with those still left (saved), and remembers
   * their nodes for their next heartbeat. The caller holds the job's lock.
   */
  JobRecord endLeftVhosts(JobRecord rec) {
    return endLeftVhosts(rec, List.of());
  }

  /** As {@link #endLeftVhosts(JobRecord)}, leaving alone the vhosts on {@code notYet}. */
  private JobRecord endLeftVhosts(JobRecord rec, List<String> notYet) {
    List<VhostPlacement> left = new ArrayList<>();
    for (VhostPlacement v : rec.getVhostsToEndList()) {
      if (notYet.contains(v.getNode())) {
        left.add(v);
        nodesWithWork.add(v.getNode());
      } else if (agents.endVhost(v)) {
        log.info(
            "job-{}: vhost {} on {} ended (left when its node could not be reached)",
            rec.getInfo().getJobId(),
            v.getVhostId(),
            v.getNode());
      } else {
        left.add(v);
        nodesWithWork.add(v.getNode());
      }
    }
    if (left.size() != rec.getVhostsToEndCount()) {
      rec = rec.toBuilder().clearVhostsToEnd().addAllVhostsToEnd(left).build();
      catalog.saveJob(rec);
    }
    return rec;
  }
}
