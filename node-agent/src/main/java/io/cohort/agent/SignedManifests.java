package io.cohort.agent;

import io.cohort.common.Caller;
import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.Owner;

/**
 * What an agent trusts in an image's manifest. The manifest names every file of the image with its
 * sha256 and says where the job's files go back and whose they are, so the agent acts on it as
 * root: it must be one that an agent of this cluster wrote (signed with the cluster's {@link
 * CheckpointKey} at the seal) for this very checkpoint and vhost, and, at a restore, of the job's
 * owner. A digest anyone could recompute; the key only the daemons hold.
 */
final class SignedManifests {
  private SignedManifests() {}

  /** {@code m}, as found in the image of {@code vhost} in {@code ckpt}, if it may be trusted. */
  static ImageManifest check(CheckpointKey key, ImageManifest m, String ckpt, String vhost) {
    if (!key.signed(m)) {
      throw CohortException.dataLoss(
          "checkpoint %s: the manifest of vhost %s is not signed by this cluster's checkpoint key "
              + "(edited, or from another cluster); refusing to use its image: restart from "
              + "another checkpoint (`cohort checkpoints`)",
          ckpt, vhost);
    }
    String job = Ids.jobOfCheckpoint(ckpt);
    if (!m.getCheckpointId().equals(ckpt)
        || !m.getVhostId().equals(vhost)
        || !m.getJobId().equals(job)) {
      throw CohortException.dataLoss(
          "checkpoint %s: the image of vhost %s holds the manifest of vhost %s of checkpoint %s "
              + "(job %s), moved there from another checkpoint; refusing to use it: restart from "
              + "another checkpoint (`cohort checkpoints`)",
          ckpt, vhost, m.getVhostId(), m.getCheckpointId(), m.getJobId());
    }
    return m;
  }

  /**
   * Refuses a restore for another owner than the one the vhost had when it was dumped: the image's
   * processes would run with credentials its owner never had.
   */
  static void requireOwner(ImageManifest m, Owner owner) {
    if (!Caller.sameCredentials(m.getOwner(), owner)) {
      throw CohortException.denied(
          "checkpoint %s: the image of vhost %s was taken of a job of %s, but the restore is for "
              + "%s; refusing to restore it",
          m.getCheckpointId(),
          m.getVhostId(),
          JobOwner.describe(m.getOwner()),
          JobOwner.describe(owner));
    }
  }
}
