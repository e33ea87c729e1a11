package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.StoredImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executor;
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
 */
final class ImageSweeper {
  private static final Logger log = LoggerFactory.getLogger(ImageSweeper.class);

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final Executor io;

  ImageSweeper(Catalog catalog, AgentDirectory agents, Executor io) {
    this.catalog = catalog;
    this.agents = agents;
    this.io = io;
  }

  /** Sweeps a node on {@code io}; a failure is logged (the next registration sweeps again). */
  void sweepLater(String node) {
    io.execute(
        () -> {
          try {
            sweep(node);
          } catch (RuntimeException e) {
            log.warn("cannot sweep the images of node {}: {}", node, e.getMessage());
          }
        });
  }

  /** Sweeps a node now; returns the images removed, as "CKPT/VHOST". */
  synchronized List<String> sweep(String node) {
    List<String> removed = new ArrayList<>();
    for (StoredImage image : agents.agentForCleanup(node).listImages().getImagesList()) {
      if (removeIfOrphan(node, image)) {
        removed.add(image.getCheckpointId() + "/" + image.getVhostId());
      }
    }
    return removed;
  }

  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  private boolean removeIfOrphan(String node, StoredImage image) {
    String ckpt = image.getCheckpointId();
    String what = ckpt + "/" + image.getVhostId() + " on " + node;
    if (!Ids.isCheckpoint(ckpt) || catalog.checkpoint(ckpt).isPresent()) {
      return false; // listed (or not an image of ours): kept
    }
    String jobId = Ids.jobOfCheckpoint(ckpt);
    if (job(jobId).isEmpty()) {
      log.info("kept image {}: its job {} is not in this coordinator's catalog", what, jobId);
      return false;
    }
    Optional<Catalog.Hold> hold = catalog.tryLockJob(jobId);
    if (hold.isEmpty()) {
      log.debug(
          "kept image {} for now: job {} is busy (a checkpoint may be in flight)", what, jobId);
      return false;
    }
    try (Catalog.Hold h = hold.get()) {
      // No barrier of the job runs now: a record that was to be written has been.
      if (catalog.checkpoint(ckpt).isPresent()) {
        return false;
      }
      long epoch = Ids.epochOfCheckpoint(ckpt);
      long next = catalog.job(jobId).getNextEpoch();
      if (epoch >= next) {
        log.info(
            "kept image {}: epoch {} was never handed out by this catalog (next {})",
            what,
            epoch,
            next);
        return false;
      }
      agents.agentForCleanup(node).deleteImage(ckpt, image.getVhostId());
      log.info("removed orphan image {}: no checkpoint record lists it", what);
      return true;
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
