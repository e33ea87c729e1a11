package io.cohort.drain;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.DefaultByteBufHolder;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * One frame of the overlay protocol between two node agents. The wire format is in {@link
 * FrameCodec} and in the module README.
 *
 * <ul>
 *   <li>{@link Hello} — first frame on a connection, in each direction: who is speaking.
 *   <li>{@link Packet} — one IP packet of a job, for a destination vhost address. Holds a {@link
 *       ByteBuf}: whoever holds a {@code Packet} owns one reference and must release it.
 *   <li>{@link Marker} — the checkpoint marker of a job for an epoch (Chandy-Lamport).
 * </ul>
 *
 * <p>Packets and markers carry the sender's network key of the job ({@link Overlay#setKey}): a
 * receiver drops those whose key is not the one it has for the job, so that a vhost of an earlier
 * incarnation, left running on a node that was cut off, never reaches the current one. Key 0 is "no
 * key" (as sent by a node that was never given one).
 */
public sealed interface Frame {

  /** Longest node name or job id on the wire, in UTF-8 bytes (a one-byte length prefix). */
  int MAX_NAME_BYTES = 255;

  /**
   * Identifies the sending node. {@code incarnation} is random per {@link Overlay} instance: a peer
   * that sees a new incarnation knows the node restarted and that any connection it still holds to
   * the old one is stale.
   */
  record Hello(String nodeName, long incarnation) implements Frame {
    public Hello {
      checkName("node name", nodeName);
    }
  }

  /**
   * A checkpoint marker: the sender froze {@code jobId} (its network {@code key}) at {@code epoch}
   * (epoch &ge; 0).
   */
  record Marker(String jobId, long key, long epoch) implements Frame {
    public Marker {
      checkName("job id", jobId);
      if (epoch < 0) {
        throw new IllegalArgumentException("epoch must be >= 0, got " + epoch);
      }
    }

    /** A marker without a network key. */
    public Marker(String jobId, long epoch) {
      this(jobId, 0, epoch);
    }
  }

  /**
   * One IP packet of {@code jobId} (sent with the network {@code key}) for the vhost at {@code
   * dstAddress} (IPv4, as an int in network order: 198.19.0.1 is {@code 0xC6130001}). Reference
   * counted through its payload.
   */
  final class Packet extends DefaultByteBufHolder implements Frame {
    private final String jobId;
    private final long key;
    private final int dstAddress;

    public Packet(String jobId, long key, int dstAddress, ByteBuf payload) {
      super(Objects.requireNonNull(payload, "payload"));
      checkName("job id", jobId);
      this.jobId = jobId;
      this.key = key;
      this.dstAddress = dstAddress;
    }

    /** A packet without a network key. */
    public Packet(String jobId, int dstAddress, ByteBuf payload) {
      this(jobId, 0, dstAddress, payload);
    }

    public String jobId() {
      return jobId;
    }

    /** The sender's network key of the job (0: none). */
    public long key() {
      return key;
    }

    public int dstAddress() {
      return dstAddress;
    }

    /** The IP packet itself (same as {@link #content()}). */
    public ByteBuf payload() {
      return content();
    }

    @Override
    public Packet replace(ByteBuf content) {
      return new Packet(jobId, key, dstAddress, content);
    }

    @Override
    public Packet retain() {
      super.retain();
      return this;
    }

    @Override
    public Packet retain(int increment) {
      super.retain(increment);
      return this;
    }

    @Override
    public Packet touch() {
      super.touch();
      return this;
    }

    @Override
    public Packet touch(Object hint) {
      super.touch(hint);
      return this;
    }

    @Override
    public String toString() {
      return "Packet("
          + jobId
          + (key == 0 ? "" : "/" + Long.toHexString(key))
          + " -> "
          + Ipv4.format(dstAddress)
          + ", "
          + (refCnt() > 0 ? content().readableBytes() + " bytes" : "released")
          + ")";
    }
  }

  private static void checkName(String what, String value) {
    Objects.requireNonNull(value, what);
    int n = value.getBytes(StandardCharsets.UTF_8).length;
    if (n == 0 || n > MAX_NAME_BYTES) {
      throw new IllegalArgumentException(
          what + " must be 1.." + MAX_NAME_BYTES + " UTF-8 bytes, got " + n + ": '" + value + "'");
    }
  }
}
