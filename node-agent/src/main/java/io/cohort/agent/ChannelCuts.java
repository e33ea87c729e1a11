package io.cohort.agent;

import io.cohort.proto.v1.VhostRecord;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The network side of a checkpoint on this node: one {@link Cut} per checkpoint of a job that spans
 * nodes, shared by the job's local vhosts. {@link #overlay} cuts the overlay's channels with
 * markers ({@link ChannelCut}); {@link #NONE} is for nodes without an overlay.
 */
interface ChannelCuts {
  /**
   * The cut of {@code ckpt} for the job of {@code rec}, opened by its first local vhost; null when
   * nothing of the job crosses to another node.
   *
   * @param localVhosts the job's vhosts on this node that take part in the checkpoint
   */
  Cut open(String ckpt, VhostRecord rec, long epoch, Set<String> localVhosts);

  /** Forgets the cut of {@code ckpt} (its vhosts hold on to it until they are done). */
  void forget(String ckpt);

  /** The cut of one checkpoint of one job on this node. */
  interface Cut {
    /** A local vhost's dump is about to start CRIU (the kernel path's cut begins here). */
    void begin();

    /** CRIU froze a local vhost of the job: cut the channels (first time only). */
    void networkLocked(String vhost);

    /** The packets recorded at the cut towards {@code address}; waits for the markers. */
    List<byte[]> recordingFor(String address);

    /** A local vhost runs again (or was ended, {@code stopped}) after a committed dump. */
    void released(String vhost, boolean stopped);

    /** The epoch is aborted: deliver what was recorded and held, and forward again. */
    void abort();
  }

  /** No overlay: jobs never span nodes from here. */
  ChannelCuts NONE =
      new ChannelCuts() {
        @Override
        public Cut open(String ckpt, VhostRecord rec, long epoch, Set<String> localVhosts) {
          return null;
        }

        @Override
        public void forget(String ckpt) {}
      };

  /** Cuts of the channels of {@code overlay}, waiting at most {@code markerTimeout}. */
  static ChannelCuts overlay(VhostOverlay overlay, Duration markerTimeout) {
    if (overlay == null) {
      return NONE;
    }
    Map<String, Cut> cuts = new ConcurrentHashMap<>();
    return new ChannelCuts() {
      @Override
      public Cut open(String ckpt, VhostRecord rec, long epoch, Set<String> localVhosts) {
        if (rec.getAddress().isEmpty()) {
          return null;
        }
        String job = rec.getJobId();
        if (overlay.peersOf(job).isEmpty()) {
          return null;
        }
        return cuts.computeIfAbsent(
            ckpt, c -> new ChannelCut(overlay, job, epoch, localVhosts, markerTimeout));
      }

      @Override
      public void forget(String ckpt) {
        cuts.remove(ckpt);
      }
    };
  }
}
