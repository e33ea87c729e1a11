package io.cohort.agent;

import io.netty.buffer.ByteBuf;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * A Chandy-Lamport marker as an IPv4/UDP packet, for the kernel path: the agent writes it into its
 * TUN with the job's markers' address as source and a vhost of the job on the peer node as
 * destination, so the kernel sends it through the job's VXLAN device behind the job's packets; the
 * peer's kernel turns it to its agent (its source), which reads it back here.
 *
 * <pre>
 *   IPv4 header (20, no options) | UDP header (8, no checksum) |
 *   "COHORTMK" | epoch (8) | network key (8) | node name length (2) | node name (UTF-8)
 * </pre>
 *
 * @param node the sending node
 * @param epoch the checkpoint's barrier epoch
 * @param key the job's network key on the sending node (the overlay's form)
 */
record KernelMarker(String node, long epoch, long key) {
  static final int PORT = 7208;
  private static final byte[] MAGIC = "COHORTMK".getBytes(StandardCharsets.US_ASCII);
  private static final int IP = 20;
  private static final int UDP = 8;

  /** The whole IPv4 packet from {@code src} to {@code dst}. */
  byte[] encode(int src, int dst) {
    byte[] name = node.getBytes(StandardCharsets.UTF_8);
    int payload = MAGIC.length + 8 + 8 + 2 + name.length;
    ByteBuffer b = ByteBuffer.allocate(IP + UDP + payload);
    b.put((byte) 0x45).put((byte) 0).putShort((short) (IP + UDP + payload));
    b.putShort((short) 0).putShort((short) 0x4000); // id, don't fragment
    b.put((byte) 64).put((byte) 17).putShort((short) 0); // ttl, UDP, checksum below
    b.putInt(src).putInt(dst);
    b.putShort(10, checksum(b.array()));
    b.putShort((short) PORT).putShort((short) PORT).putShort((short) (UDP + payload));
    b.putShort((short) 0);
    b.put(MAGIC).putLong(epoch).putLong(key).putShort((short) name.length).put(name);
    return b.array();
  }

  /** The marker in an IPv4 packet of {@code length} bytes, if it is one. */
  static Optional<KernelMarker> parse(ByteBuf p, int length) {
    int at = IP + UDP;
    if (length < at + MAGIC.length + 18
        || p.getUnsignedByte(0) != 0x45
        || p.getUnsignedByte(9) != 17
        || p.getUnsignedShort(IP + 2) != PORT) {
      return Optional.empty();
    }
    for (int i = 0; i < MAGIC.length; i++) {
      if (p.getByte(at + i) != MAGIC[i]) {
        return Optional.empty();
      }
    }
    at += MAGIC.length;
    long epoch = p.getLong(at);
    long key = p.getLong(at + 8);
    int n = p.getUnsignedShort(at + 16);
    if (length < at + 18 + n) {
      return Optional.empty();
    }
    return Optional.of(
        new KernelMarker(p.toString(at + 18, n, StandardCharsets.UTF_8), epoch, key));
  }

  private static short checksum(byte[] packet) {
    int sum = 0;
    for (int i = 0; i < IP; i += 2) {
      sum += ((packet[i] & 0xff) << 8) | (packet[i + 1] & 0xff);
    }
    while ((sum >> 16) != 0) {
      sum = (sum & 0xffff) + (sum >> 16);
    }
    return (short) ~sum;
  }
}
