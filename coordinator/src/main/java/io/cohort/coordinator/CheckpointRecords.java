package io.cohort.coordinator;

import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.SealImageResponse;
import java.util.Map;

/** The global record of a checkpoint, as the barrier writes it at its commit. */
final class CheckpointRecords {
  private CheckpointRecords() {}

  /**
   * The record of {@code job}'s epoch: its vhosts (without their pids, which a restart changes),
   * each sealed image's manifest digest and store, and the totals the seals reported.
   */
  static CheckpointInfo.Builder of(
      JobInfo job,
      long epoch,
      boolean stop,
      long imageBytes,
      Map<String, SealImageResponse> sealed,
      long nowMs) {
    CheckpointInfo.Builder info =
        CheckpointInfo.newBuilder()
            .setCheckpointId(job.getJobId() + "." + epoch)
            .setJobId(job.getJobId())
            .setEpoch(epoch)
            .setCreatedUnixMs(nowMs)
            .addAllVhosts(
                job.getVhostsList().stream().map(v -> v.toBuilder().setPid(0).build()).toList())
            .setStoppedJob(stop)
            .setImageBytes(imageBytes);
    sealed.forEach(
        (vhost, r) -> {
          info.putManifestSha256(vhost, r.getManifestSha256());
          info.putImageStore(vhost, r.getImageStoreId());
          info.setInflightPackets(info.getInflightPackets() + r.getInflightPackets());
          info.setInflightBytes(info.getInflightBytes() + r.getInflightBytes());
          info.setTrackedFiles(info.getTrackedFiles() + r.getTrackedFiles());
          info.setTrackedBytesCopied(info.getTrackedBytesCopied() + r.getTrackedBytesCopied());
          info.setTrackedCaptureMs(Math.max(info.getTrackedCaptureMs(), r.getTrackedCaptureMs()));
        });
    return info;
  }
}
