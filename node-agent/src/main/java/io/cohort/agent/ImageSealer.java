package io.cohort.agent;

import io.cohort.common.FaultPoints;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.TrackedFiles;
import io.cohort.proto.v1.VhostRecord;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The work of a seal, between its two transitions ({@link CheckpointParticipant#seal} makes them):
 * the manifest of a dumped image, the packets in flight towards its vhost and the job's files
 * written into it, then every file digested and synced ({@link ImageStore#seal}). Publishing is the
 * participant's, under the dump's monitor.
 */
final class ImageSealer {
  private final String node;
  private final ImageStore images;
  private final Supplier<String> criuVersion;

  ImageSealer(String node, ImageStore images, Supplier<String> criuVersion) {
    this.node = node;
    this.images = images;
    this.criuVersion = criuVersion;
  }

  /** A sealed (not yet published) image, and what its seal response reports. */
  record Sealed(
      Map.Entry<ImageManifest, String> manifest, TrackedFiles tracked, List<byte[]> inflight) {}

  /** Writes the manifest and the cohort-*.img files of {@code dump}'s pending image, durably. */
  Sealed seal(ParticipantDump dump) throws IOException {
    VhostRecord rec = dump.record;
    FaultPoints.reach("agent.seal", dump.ckpt + "/" + rec.getVhostId());
    Path pending = images.pendingDir(dump.ckpt, rec.getVhostId());
    ImageManifest.Builder m =
        ImageManifest.newBuilder()
            .setFormatVersion(1)
            .setCheckpointId(dump.ckpt)
            .setJobId(rec.getJobId())
            .setEpoch(dump.epoch)
            .setVhostId(rec.getVhostId())
            .setHostname(rec.getHostname())
            .setCriuVersion(criuVersion.get())
            .setKernel(NodeAgent.kernel())
            .setSpec(dump.request.getSpec())
            .setNode(node)
            .setCreatedUnixMs(System.currentTimeMillis())
            .setOutputLogPath(rec.getLogPath())
            .setOutputLogSize(dump.logSize())
            .setDumpedPid(rec.getPid())
            .setStatusPath(rec.getStatusPath())
            .setInitPath(rec.getInitPath())
            .setAddress(rec.getAddress())
            .setOwner(rec.getOwner())
            .addAllJobFiles(dump.jobFiles());
    TrackedFiles tracked = FileTracker.read(pending.resolve(ImageStore.CRIU_DIR));
    List<byte[]> inflight = dump.cut == null ? List.of() : dump.cut.recordingFor(rec.getAddress());
    if (dump.cut != null) {
      InflightImage.write(
          pending.resolve(ImageStore.CRIU_DIR), rec.getJobId(), dump.epoch, inflight, dump.ckpt);
    }
    JobFiles.intoImage(dump.jobFiles(), pending.resolve(ImageStore.CRIU_DIR));
    return new Sealed(images.seal(pending, m), tracked, inflight);
  }

  /** The seal's answer to the coordinator. */
  SealImageResponse response(Sealed s, long ms) {
    return SealImageResponse.newBuilder()
        .setManifest(s.manifest().getKey())
        .setManifestSha256(s.manifest().getValue())
        .setSealMs(ms)
        .setInflightPackets(s.inflight().size())
        .setInflightBytes(s.inflight().stream().mapToLong(b -> b.length).sum())
        .setImageStoreId(images.id())
        .setTrackedFiles(s.tracked().getFilesCount())
        .setTrackedBytesCopied(s.tracked().getBytesCopied())
        .setTrackedCaptureMs(s.tracked().getCaptureMs())
        .build();
  }
}
