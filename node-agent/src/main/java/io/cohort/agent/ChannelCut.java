package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.drain.Recording;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The overlay side of one checkpoint of one job on this node: the Chandy-Lamport cut of the
 * channels between this node's vhosts of the job and its vhosts on other nodes.
 *
 * <p>When CRIU has frozen the first local vhost of the job and is about to lock its network ({@link
 * #networkLocked}), the overlay stops delivering the job's packets here and sends a marker to every
 * peer node; what arrives from a peer before its marker was in flight at the cut and is recorded,
 * and saved with the images of the vhosts it is addressed to ({@link #recordingFor}). Once every
 * local vhost is let go again ({@link #released}), the overlay delivers the recorded packets, then
 * those held since, and forwards again; an abort does the same at once ({@link #abort}). A job
 * stopped by its checkpoint is forgotten ({@link #released} with {@code stopped}).
 *
 * <p>Thread-safe: the vhosts of the job are dumped, sealed and released on their own gRPC threads.
 */
final class ChannelCut implements ChannelCuts.Cut {
  private static final Logger log = LoggerFactory.getLogger(ChannelCut.class);

  private final VhostOverlay overlay;
  private final String job;
  private final long epoch;
  private final Set<String> vhosts;
  private final Duration markerTimeout;
  private final Set<String> released = new HashSet<>();
  private CompletableFuture<Recording> recording;
  private boolean markersSent;
  private boolean resumed;

  /**
   * @param job the job's id, its key in the overlay
   * @param vhosts the job's vhosts on this node, all part of the checkpoint
   * @param markerTimeout how long to wait for the peers' markers once every vhost is dumped
   */
  ChannelCut(
      VhostOverlay overlay, String job, long epoch, Set<String> vhosts, Duration markerTimeout) {
    this.overlay = overlay;
    this.job = job;
    this.epoch = epoch;
    this.vhosts = Set.copyOf(vhosts);
    this.markerTimeout = markerTimeout;
  }

  /**
   * A local vhost's dump is about to start CRIU: on the kernel path the job's arrivals are turned
   * to the agent from now on (first time only; see {@link VhostOverlay#beginCut}).
   */
  @Override
  public synchronized void begin() {
    if (recording == null && overlay.kernelCarries(job)) {
      recording = overlay.beginCut(job, epoch);
    }
  }

  /** CRIU froze a local vhost of the job: cut the channels (first time only). */
  @Override
  public synchronized void networkLocked(String vhost) {
    if (markersSent) {
      return;
    }
    markersSent = true;
    if (recording == null) {
      recording = overlay.freeze(job, epoch);
    } else {
      overlay.markersNow(job);
    }
    log.debug("job {} epoch {}: channels cut at the freeze of {}", job, epoch, vhost);
  }

  /**
   * The packets recorded at the cut that are addressed to {@code address}; waits for the peers'
   * markers. Fails if the cut never happened or a marker did not come in time.
   */
  @Override
  public List<byte[]> recordingFor(String address) {
    return recording().byDestination().getOrDefault(VhostOverlay.ipv4(address), List.of());
  }

  private Recording recording() {
    CompletableFuture<Recording> r;
    synchronized (this) {
      r = recording;
    }
    if (r == null) {
      throw CohortException.internal(
          "checkpoint of job "
              + job
              + " epoch "
              + epoch
              + ": the overlay channels were never cut (CRIU did not report the network lock)",
          null);
    }
    try {
      return r.get(markerTimeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new CohortException(
          CohortException.Kind.DEADLINE_EXCEEDED,
          "checkpoint of epoch "
              + epoch
              + ": the markers of the nodes "
              + overlay.peersOf(job)
              + " did not all arrive "
              + "within "
              + markerTimeout
              + "; is one of them unreachable?");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw CohortException.internal("interrupted while waiting for the overlay markers", e);
    } catch (ExecutionException e) {
      throw CohortException.internal(
          "the overlay could not record the channels of epoch "
              + epoch
              + ": "
              + e.getCause().getMessage(),
          e.getCause());
    }
  }

  /**
   * A local vhost runs again (or, {@code stopped}, was ended) after a committed dump. Once all are,
   * the overlay delivers what it recorded and held (after the last peer's marker, so that the
   * recording is complete first), or forgets the stopped job.
   */
  @Override
  public void released(String vhost, boolean stopped) {
    synchronized (this) {
      released.add(vhost);
      if (resumed || !released.containsAll(vhosts)) {
        return;
      }
      resumed = true;
    }
    if (stopped) {
      overlay.removeJob(job);
      return;
    }
    try {
      recording();
    } catch (CohortException e) {
      log.warn(
          "job {} epoch {}: resuming the overlay without a complete recording: {}",
          job,
          epoch,
          e.getMessage());
    }
    overlay.resume(job, epoch);
  }

  /** The epoch is aborted: deliver what was recorded and held and forward again, now. */
  @Override
  public void abort() {
    synchronized (this) {
      if (resumed) {
        return;
      }
      resumed = true;
      if (recording == null) {
        return; // never cut
      }
    }
    overlay.resume(job, epoch);
  }
}
