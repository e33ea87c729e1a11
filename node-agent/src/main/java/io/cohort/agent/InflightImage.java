package io.cohort.agent;

import io.cohort.common.DurableFiles;
import io.cohort.proto.v1.InflightPackets;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The packets in flight towards a vhost at its cut, kept in its image as {@value #NAME} (an {@link
 * InflightPackets}) beside CRIU's files and covered by the manifest: written at the seal, read at a
 * restore to be written into the restored vhost's network.
 */
final class InflightImage {
  static final String NAME = "cohort-inflight.img";

  private InflightImage() {}

  /** Writes the recording of one vhost's cut into its image's criu directory. */
  static void write(Path criuDir, String jobId, long epoch, List<byte[]> packets, String ckpt) {
    InflightPackets.Builder b = InflightPackets.newBuilder().setJobId(jobId).setEpoch(epoch);
    packets.forEach(p -> b.addPackets(com.google.protobuf.ByteString.copyFrom(p)));
    try {
      Files.write(criuDir.resolve(NAME), b.build().toByteArray());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot write the in-flight packets of " + ckpt, e);
    }
  }

  /** The packets in flight towards a vhost at its checkpoint (none if the image has none). */
  static List<byte[]> read(Path criuDir, String ckpt) {
    Path f = criuDir.resolve(NAME);
    if (!Files.exists(f)) {
      return List.of();
    }
    try {
      return InflightPackets.parseFrom(Files.readAllBytes(f)).getPacketsList().stream()
          .map(com.google.protobuf.ByteString::toByteArray)
          .toList();
    } catch (IOException e) {
      // Verified against the manifest just before: only a bug or the disk can get here.
      throw DurableFiles.failure("cannot read the in-flight packets of " + ckpt, e);
    }
  }
}
