package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.Ids;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.Owner;
import io.cohort.proto.v1.RestoreVhostRequest;
import io.cohort.proto.v1.RestoreVhostResponse;
import io.cohort.proto.v1.VerifyImageRequest;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Restores vhosts from checkpoint images: checks first that the image (its files, and the
 * credentials of its processes: {@link ImageCredentials}) and the job's files allow it (changing
 * nothing), returns the job's logs and files to the checkpoint (the logs from the image itself when
 * it was copied from another node, see {@link JobFiles}), runs CRIU, and hands the packets that
 * were in flight towards the vhost to its {@link JobNetwork}.
 */
final class Restorer {
  private static final Logger log = LoggerFactory.getLogger(Restorer.class);

  private final String node;
  private final String who;
  private final VhostRecords records;
  private final ImageStore images;
  private final RestoreHolds holds;
  private final VhostNetwork network;
  private final JobNetwork jobNetwork;
  private final OutputLog output;

  Restorer(
      String node,
      VhostRecords records,
      ImageStore images,
      RestoreHolds holds,
      VhostNetwork network,
      JobNetwork jobNetwork,
      OutputLog output) {
    this.node = node;
    this.who = "agent " + node;
    this.records = records;
    this.images = images;
    this.holds = holds;
    this.network = network;
    this.jobNetwork = jobNetwork;
    this.output = output;
  }

  /**
   * Checks, without changing anything, that a vhost can be restored from a checkpoint: the image
   * matches its manifest, its processes have the owner's credentials, and the job's output log can
   * be brought back to its size then.
   */
  void verify(VerifyImageRequest req) {
    verified(
        Ids.requireCheckpoint(req.getCheckpointId()),
        Ids.requireVhost(req.getVhostId()),
        req.getManifestSha256(),
        req.getOwner());
  }

  private ImageStore.Image verified(String ckpt, String vhostId, String manifestSha, Owner owner) {
    ImageStore.Image image = images.verify(ckpt, vhostId, manifestSha);
    SignedManifests.requireOwner(image.manifest(), owner); // signed as this owner's, then checked
    long t0 = System.nanoTime();
    ImageCredentials.check(
        owner,
        image.criuDir(),
        image.manifest().getInitPath(),
        "checkpoint " + ckpt + ", vhost " + vhostId);
    if (!JobOwner.isRoot(owner)) {
      log.info(
          "{}: the processes of {}/{} have the credentials of {} (checked in {} ms)",
          who,
          ckpt,
          vhostId,
          JobOwner.describe(owner),
          (System.nanoTime() - t0) / 1_000_000);
    }
    JobFiles.check(image, ckpt);
    FileRollback.check(FileTracker.read(image.criuDir()), image.criuDir(), ckpt);
    return image;
  }

  RestoreVhostResponse restore(RestoreVhostRequest req) {
    String ckpt = Ids.requireCheckpoint(req.getCheckpointId());
    String vhostId = Ids.requireVhost(req.getVhostId());
    VhostRecord existing = records.exists(vhostId) ? records.observe(vhostId) : null;
    if (existing != null && existing.getState() == VhostState.VHOST_STATE_RUNNING) {
      throw CohortException.precondition(
          "vhost %s is running; end it before restoring it", vhostId);
    }
    ImageStore.Image image = verified(ckpt, vhostId, req.getManifestSha256(), req.getOwner());
    VhostRecord rec = existing != null ? existing : adopt(vhostId, image.manifest(), ckpt);
    // The job's owner as the coordinator knows it now (CRIU gives the processes the credentials
    // of their image, checked above to be the owner's; pid 1, restored with its memory, spawns as
    // the owner it was started with).
    rec =
        rec.toBuilder()
            .setPlan(VhostNetwork.requirePlan(rec.getAddress(), req.getPlan()))
            .setOwner(req.getOwner())
            .build();
    // Only now, with the vhost's earlier incarnation gone (refused above while it runs), are the
    // job's logs returned to the checkpoint: nothing else writes them from here on.
    List<OutputLog.Rollback> logs = JobFiles.rollBack(output, image, ckpt);
    FileRollback.Applied files;
    try {
      files = FileRollback.apply(FileTracker.read(image.criuDir()), image.criuDir(), ckpt);
    } catch (RuntimeException e) {
      JobFiles.undo(logs);
      throw e;
    }
    Path work =
        records.vhostDir(vhostId).resolve("restore-" + ckpt + "-" + System.currentTimeMillis());
    Criu.Restored restored = null;
    try {
      JobFiles.restoreStdin(image.manifest().getJobFilesList(), image.criuDir());
      // Logs copied from another node's image and a stdin put back are new files: the owner's,
      // like those of a new vhost (before CRIU, which checks the stdin's mode).
      JobOwner.giveFiles(
          req.getOwner(), JobFiles.paths(Path.of(rec.getLogPath()), rec.getJobFilesList()));
      Files.deleteIfExists(Path.of(rec.getStatusPath()));
      if (!rec.getAddress().isEmpty()) {
        network.removeStale(vhostId);
      }
      // Held until the coordinator releases the job (ReleaseRestored): see RestoreHolds.
      restored =
          holds.restore(
              vhostId,
              image.criuDir(),
              work,
              VhostNetwork.restoreOptions(vhostId, rec.getAddress()));
      if (!rec.getAddress().isEmpty()) {
        network.reattach(restored.pid(), vhostId, rec.getAddress(), rec.getPlan());
      }
    } catch (CriuException | IOException | CohortException e) {
      if (restored != null) {
        holds.release(List.of(vhostId));
      }
      files.undo();
      JobFiles.undo(logs);
      // CriuException's message is one line: the cause read from CRIU's log, and where it is.
      throw CohortException.internal(
          "restore of vhost "
              + vhostId
              + " from checkpoint "
              + ckpt
              + " failed: "
              + e.getMessage()
              + ". The output log is as it was.",
          e);
    }
    long pid = restored.pid();
    ProcessIdentity init = ProcessIdentity.of(pid).orElseGet(() -> new ProcessIdentity(pid, -1));
    rec =
        rec.toBuilder()
            .setPid(restored.pid())
            .setPidStartTicks(init.startTicks())
            .setState(VhostState.VHOST_STATE_RUNNING)
            .setExitCode(0)
            .setExitSignal(0)
            .build();
    records.save(rec);
    List<byte[]> inflight = InflightImage.read(image.criuDir(), ckpt);
    jobNetwork.holdForRestored(vhostId, inflight);
    log.info(
        "{}: vhost {} restored from {} in {} ms, init pid {}; {} packets were in flight "
            + "towards it",
        who,
        vhostId,
        ckpt,
        restored.criuMillis(),
        restored.pid(),
        inflight.size());
    // Where the restored output goes on: a position in the order of its chunks, if it has one.
    long outputAt =
        JobFiles.find(image.manifest().getJobFilesList(), JobFiles.ORDER)
            .map(f -> f.getSize())
            .orElse(image.manifest().getOutputLogSize());
    return RestoreVhostResponse.newBuilder()
        .setPlacement(records.placement(rec))
        .setOutputOffset(outputAt)
        .setCriuMs(restored.criuMillis())
        .setInflightPackets(inflight.size())
        .build();
  }

  /** A record for a vhost that ran on another node, made from its (verified) manifest. */
  private VhostRecord adopt(String vhostId, ImageManifest m, String ckpt) {
    VhostRecord rec =
        VhostRecord.newBuilder()
            .setVhostId(vhostId)
            .setJobId(m.getJobId())
            .setHostname(m.getHostname())
            .setSpec(m.getSpec())
            .setLogPath(m.getOutputLogPath())
            .setStatusPath(m.getStatusPath())
            .setInitPath(m.getInitPath())
            .setAddress(m.getAddress())
            .setHostVeth(m.getAddress().isEmpty() ? "" : VhostNetwork.hostVeth(vhostId))
            .addAllJobFiles(m.getJobFilesList())
            .setState(VhostState.VHOST_STATE_STOPPED)
            .build();
    try {
      JobOwner.prepareDir(records.vhostDir(vhostId));
      JobOwner.prepareDir(Path.of(m.getStatusPath()).getParent());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot adopt vhost " + vhostId, e);
    }
    records.save(rec);
    log.info(
        "{}: adopted vhost {} of job {} from checkpoint {} on {}",
        who,
        vhostId,
        m.getJobId(),
        ckpt,
        node);
    return rec;
  }
}
