package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class KernelMarkerTest {
  @Test
  void aMarkerReadsBackAsWrittenAndHasAValidHeader() {
    KernelMarker m = new KernelMarker("n2", 7, 0x1234_5678_9abc_def0L);
    byte[] p = m.encode(VhostOverlay.ipv4("198.19.0.30"), VhostOverlay.ipv4("198.19.0.17"));
    ByteBuf buf = Unpooled.wrappedBuffer(p);
    assertEquals(Optional.of(m), KernelMarker.parse(buf, p.length));
    int sum = 0; // the IPv4 header sums to 0xffff with its checksum (the kernel checks it)
    for (int i = 0; i < 20; i += 2) {
      sum += buf.getUnsignedShort(i);
    }
    while ((sum >> 16) != 0) {
      sum = (sum & 0xffff) + (sum >> 16);
    }
    assertEquals(0xffff, sum);
    assertEquals(p.length, buf.getUnsignedShort(2));
  }

  @Test
  void anOrdinaryPacketIsNoMarker() {
    byte[] p = new KernelMarker("n2", 1, 1).encode(1, 2);
    p[30] ^= 1; // the magic
    assertTrue(KernelMarker.parse(Unpooled.wrappedBuffer(p), p.length).isEmpty());
    assertTrue(KernelMarker.parse(Unpooled.wrappedBuffer(p), 20).isEmpty());
  }
}
