package io.cohort.drain;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The in-flight packets of one job at one epoch on this node: every packet of the job that arrived
 * from a peer after the local freeze and before that peer's marker. Immutable; the byte arrays are
 * copies taken when the packets arrived (see {@link RecordedPacket}), so a recording can be
 * serialized into the checkpoint and re-injected on restart with {@link Overlay#inject}.
 */
public final class Recording {

  private final String jobId;
  private final long epoch;
  private final List<RecordedPacket> packets;
  private final long byteCount;

  public Recording(String jobId, long epoch, List<RecordedPacket> packets) {
    this.jobId = jobId;
    this.epoch = epoch;
    this.packets = List.copyOf(packets);
    long bytes = 0;
    for (RecordedPacket p : this.packets) {
      bytes += p.data().length;
    }
    this.byteCount = bytes;
  }

  public String jobId() {
    return jobId;
  }

  public long epoch() {
    return epoch;
  }

  /** All recorded packets in arrival order (the order {@link Overlay#resume} re-injects them). */
  public List<RecordedPacket> packets() {
    return packets;
  }

  /** Recorded packets per destination vhost address, each list in arrival order. */
  public Map<Integer, List<byte[]>> byDestination() {
    Map<Integer, List<byte[]>> map = new LinkedHashMap<>();
    for (RecordedPacket p : packets) {
      map.computeIfAbsent(p.dstAddress(), a -> new ArrayList<>()).add(p.data());
    }
    map.replaceAll((a, list) -> Collections.unmodifiableList(list));
    return Collections.unmodifiableMap(map);
  }

  public int packetCount() {
    return packets.size();
  }

  /** Sum of the recorded packets' sizes. */
  public long byteCount() {
    return byteCount;
  }

  @Override
  public String toString() {
    return "Recording("
        + jobId
        + " epoch "
        + epoch
        + ": "
        + packets.size()
        + " packets, "
        + byteCount
        + " bytes)";
  }
}
