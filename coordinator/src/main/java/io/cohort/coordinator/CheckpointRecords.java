package io.cohort.coordinator;

import io.cohort.common.Caller;
import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.SealImageResponse;
import java.util.Map;

/**
 * The global record of a checkpoint, as the barrier writes it at its commit, and what makes it
 * trusted when it is used: the catalog signs it with the cluster's {@link CheckpointKey} at each
 * write ({@link Catalog}), and a restart acts only on a record signed as a checkpoint of that job,
 * taken of the job's owner. The record names every image by its manifest's sha256, and a sha256
 * anyone who can write the catalog could recompute; the MAC only the daemons can.
 */
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
            .setOwner(job.getOwner())
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

  /**
   * {@code c}, if it may be acted on for {@code job}: signed with {@code key}, a checkpoint of that
   * job, taken of the job's owner (a job record whose owner was edited since is refused here, and
   * the agents refuse an image of another owner than the dumped one).
   */
  static CheckpointInfo requireTrusted(CheckpointKey key, CheckpointInfo c, JobInfo job) {
    if (!key.signed(c)) {
      throw CohortException.dataLoss(
          "checkpoint %s of job %s: its record is not signed by this cluster's checkpoint key "
              + "(edited, or from another cluster); refusing to restart from it: restart from "
              + "another checkpoint (`cohort checkpoints %s`)",
          c.getCheckpointId(), job.getJobId(), job.getJobId());
    }
    if (!c.getJobId().equals(job.getJobId())
        || !c.getCheckpointId().equals(job.getJobId() + "." + c.getEpoch())) {
      throw CohortException.dataLoss(
          "the catalog lists checkpoint %s (job %s, epoch %d) among job %s's: a record moved "
              + "there from another job; refusing to restart from it",
          c.getCheckpointId(), c.getJobId(), c.getEpoch(), job.getJobId());
    }
    if (!Caller.sameCredentials(c.getOwner(), job.getOwner())) {
      throw CohortException.denied(
          "checkpoint %s was taken of a job of %s, but job %s belongs to %s in the catalog now "
              + "(its record was changed); refusing to restart it",
          c.getCheckpointId(),
          Caller.name(c.getOwner()),
          job.getJobId(),
          Caller.name(job.getOwner()));
    }
    return c;
  }
}
