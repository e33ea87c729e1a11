package io.cohort.drain;

import java.util.Objects;

/**
 * One in-flight IP packet kept with a checkpoint: its destination vhost address and a copy of its
 * bytes. The array is shared, not copied again: treat it as read-only.
 */
public record RecordedPacket(int dstAddress, byte[] data) {

  public RecordedPacket {
    Objects.requireNonNull(data, "data");
  }

  @Override
  public String toString() {
    return "RecordedPacket(" + Ipv4.format(dstAddress) + ", " + data.length + " bytes)";
  }
}
