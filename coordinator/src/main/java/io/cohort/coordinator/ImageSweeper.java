package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.StoredImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Removes the images that no checkpoint record lists ("orphans") from a node's image store.
 *
 * <p>An agent publishes a vhost's image at the end of its seal, before the coordinator writes the
 * checkpoint record; an abort discards it. A coordinator that dies between the seal and the record,
 * or an agent it cannot reach at the abort, leaves a published image that no record lists and that
 * nothing else removes. The sweep lists a node's images (ListImages) and deletes (DeleteImage) each
 * one whose checkpoint has no record, only when all of these hold:
 *
 * <ul>
 *   <li>the job's lock is free now (taken without waiting): a checkpoint holds it for the whole
 *       barrier, so a free lock means no epoch of the job is in flight, and a record that was to be
 *       written has been. A busy job's images are left for a later sweep;
 *   <li>under that lock, the checkpoint still has no record, and its epoch is below the job's
 *       next_epoch: this catalog handed that epoch out and it can never be committed now;
 *   <li>the catalog knows the job. An image of a job it does not know is kept: a catalog cannot
 *       tell a job of its own from another coordinator's (a coordinator started on an empty or
 *       wrong home, a store shared by two clusters), and Cohort never removes a job's record, so
 *       such an image is not provably an orphan. `cohort doctor` reports it.
 * </ul>
 *
 * Nodes that share an image directory list the same images; the check is by checkpoint id, so it is
 * right from any of them, and sweeps run one at a time, so the second node's listing no longer
 * shows what the first removed. Runs when an agent (re)registers (so at a coordinator's start, once
 * per node) and, in the embedded mode, when the coordinator starts.
 *
 * <p>A registration's sweep that left an image for later (its job was busy: at a coordinator's
 * start, the reconcile of an epoch it found open holds the lock beside the sweep) or could not list
 * the node comes back on its own, after 1 s and then twice as long each time up to a minute, while
 * the node is alive: otherwise the orphan would wait for the node's next registration, which may be
 * the coordinator's next start.
 */
final class ImageSweeper {
  private static final Logger log = LoggerFactory.getLogger(ImageSweeper.class);

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final Executor io;
  private final ScheduledExecutorService timer;
  private final long firstRetryMillis;

  /** Nodes with a sweep running or to come back to: one chain per node. */
  private final Set<String> retrying = ConcurrentHashMap.newKeySet();

  /** Nodes that registered again while their chain ran: it sweeps once more before it ends. */
  private final Set<String> registeredAgain = ConcurrentHashMap.newKeySet();

  /** What one sweep of a node did: the images removed ("CKPT/VHOST") and those left for later. */
  record Swept(List<String> removed, int deferred) {}

  ImageSweeper(
      Catalog catalog,
      AgentDirectory agents,
      Executor io,
      ScheduledExecutorService timer,
      long firstRetryMillis) {
    this.catalog = catalog;
    this.agents = agents;
    this.io = io;
    this.timer = timer;
    this.firstRetryMillis = firstRetryMillis;
  }

  /**
   * Sweeps a node on {@code io}, and again later if that sweep left an image for later or failed
   * (logged).
   */
  void sweepLater(String node) {
    if (retrying.add(node)) {
      io.execute(() -> sweepUntilDone(node, firstRetryMillis));
    } else {
      registeredAgain.add(node);
    }
  }

  private void sweepUntilDone(String node, long retryMillis) {
    registeredAgain.remove(node);
    boolean again;
    try {
      again = sweep(node).deferred() > 0;
    } catch (RuntimeException e) {
      log.warn("cannot sweep the images of node {}: {}", node, e.getMessage());
      again = true;
    }
    if (registeredAgain.remove(node)) { // what it published before registering is swept too
      io.execute(() -> sweepUntilDone(node, firstRetryMillis));
      return;
    }
    if (!again || !agents.isAlive(node)) {
      retrying.remove(node); // done, or its next registration sweeps it
      if (registeredAgain.remove(node)) {
        sweepLater(node); // it registered between the check above and the removal
      }
      return;
    }
    log.debug("node {}: sweeping again in {} ms", node, retryMillis);
    long next = Math.min(retryMillis * 2, TimeUnit.MINUTES.toMillis(1));
    try {
      timer.schedule(
          () -> io.execute(() -> sweepUntilDone(node, next)), retryMillis, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      retrying.remove(node); // the coordinator is closing
    }
  }

  /** Sweeps a node now. */
  synchronized Swept sweep(String node) {
    List<String> removed = new ArrayList<>();
    int deferred = 0;
    for (StoredImage image : agents.agentForCleanup(node).listImages().getImagesList()) {
      switch (removeIfOrphan(node, image)) {
        case REMOVED -> removed.add(image.getCheckpointId() + "/" + image.getVhostId());
        case BUSY -> deferred++;
        case KEPT -> {}
      }
    }
    return new Swept(removed, deferred);
  }

  private enum Verdict {
    REMOVED,
    KEPT,
    /** Its job's lock is held: maybe an epoch in flight; decided by a later sweep. */
    BUSY
  }

  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  private Verdict removeIfOrphan(String node, StoredImage image) {
    String ckpt = image.getCheckpointId();
    String what = ckpt + "/" + image.getVhostId() + " on " + node;
    if (!Ids.isCheckpoint(ckpt) || catalog.checkpoint(ckpt).isPresent()) {
      return Verdict.KEPT; // listed (or not an image of ours)
    }
    String jobId = Ids.jobOfCheckpoint(ckpt);
    if (job(jobId).isEmpty()) {
      log.info("kept image {}: its job {} is not in this coordinator's catalog", what, jobId);
      return Verdict.KEPT;
    }
    Optional<Catalog.Hold> hold = catalog.tryLockJob(jobId);
    if (hold.isEmpty()) {
      log.debug(
          "kept image {} for now: job {} is busy (a checkpoint may be in flight)", what, jobId);
      return Verdict.BUSY;
    }
    try (Catalog.Hold h = hold.get()) {
      // No barrier of the job runs now: a record that was to be written has been.
      if (catalog.checkpoint(ckpt).isPresent()) {
        return Verdict.KEPT;
      }
      long epoch = Ids.epochOfCheckpoint(ckpt);
      long next = catalog.job(jobId).getNextEpoch();
      if (epoch >= next) {
        log.info(
            "kept image {}: epoch {} was never handed out by this catalog (next {})",
            what,
            epoch,
            next);
        return Verdict.KEPT;
      }
      agents.agentForCleanup(node).deleteImage(ckpt, image.getVhostId());
      log.info("removed orphan image {}: no checkpoint record lists it", what);
      return Verdict.REMOVED;
    }
  }

  private Optional<JobRecord> job(String jobId) {
    try {
      return Optional.of(catalog.job(jobId));
    } catch (CohortException e) {
      if (e.kind() != CohortException.Kind.NOT_FOUND) {
        throw e;
      }
      return Optional.empty();
    }
  }
}
