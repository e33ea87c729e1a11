package io.cohort.drain;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.EncoderException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The wire format, through the same framing → codec handlers the overlay uses. */
@ExtendWith(NoLeaks.class)
class FrameCodecTest {

  private static final int DST = Ipv4.parse("198.19.0.7");

  private static EmbeddedChannel channel() {
    return new EmbeddedChannel(
        FrameCodec.newFrameDecoder(), FrameCodec.newFramePrepender(), new FrameCodec("test:"));
  }

  /** Encodes {@code frame} and returns the exact bytes that would go on the wire. */
  private static byte[] encode(Frame frame) {
    EmbeddedChannel ch = channel();
    assertTrue(ch.writeOutbound(frame));
    ByteBuf all = Unpooled.buffer();
    for (ByteBuf b; (b = ch.readOutbound()) != null; ) {
      all.writeBytes(b);
      b.release();
    }
    assertFalse(ch.finish());
    byte[] bytes = ByteBufUtil.getBytes(all);
    all.release();
    return bytes;
  }

  /**
   * Feeds {@code wire} to a fresh channel, in chunks of {@code chunk} bytes, and returns what came
   * out.
   */
  private static List<Object> decode(byte[] wire, int chunk, EmbeddedChannel ch) {
    for (int i = 0; i < wire.length; i += chunk) {
      ch.writeInbound(Unpooled.copiedBuffer(wire, i, Math.min(chunk, wire.length - i)));
    }
    List<Object> out = new ArrayList<>();
    for (Object o; (o = ch.readInbound()) != null; ) {
      out.add(o);
    }
    return out;
  }

  @Test
  void helloRoundTripWithExactBytes() {
    byte[] wire = encode(new Frame.Hello("n1", 0x0102030405060708L));
    byte[] expected = {
      0, 0, 0, 13, /* HELLO */ 1, /* version */ 2, 2, 'n', '1', 1, 2, 3, 4, 5, 6, 7, 8
    };
    assertArrayEquals(expected, wire);
    EmbeddedChannel ch = channel();
    assertEquals(
        List.of(new Frame.Hello("n1", 0x0102030405060708L)), decode(wire, wire.length, ch));
    assertFalse(ch.finish());
  }

  @Test
  void markerRoundTripWithExactBytes() {
    byte[] wire = encode(new Frame.Marker("job-7", 0x1122334455667788L, 3));
    byte[] expected = {
      0,
      0,
      0,
      23, /* MARKER */
      3,
      5,
      'j',
      'o',
      'b',
      '-',
      '7', /* key */
      0x11,
      0x22,
      0x33,
      0x44,
      0x55,
      0x66,
      0x77,
      (byte) 0x88, /* epoch */
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      3
    };
    assertArrayEquals(expected, wire);
    EmbeddedChannel ch = channel();
    assertEquals(
        List.of(new Frame.Marker("job-7", 0x1122334455667788L, 3)), decode(wire, wire.length, ch));
    assertFalse(ch.finish());
  }

  @Test
  void packetRoundTripReleasesEverything() {
    ByteBuf payload = Unpooled.copiedBuffer("an IP packet", StandardCharsets.US_ASCII);
    byte[] wire = encode(new Frame.Packet("job-7", -2, DST, payload));
    assertEquals(0, payload.refCnt(), "the encoder released the sent packet");
    byte[] header = {
      0,
      0,
      0,
      31, /* PACKET */
      2,
      5,
      'j',
      'o',
      'b',
      '-',
      '7', /* key */
      -1,
      -1,
      -1,
      -1,
      -1,
      -1,
      -1,
      -2, /* dst */
      (byte) 198,
      19,
      0,
      7
    };
    assertArrayEquals(header, java.util.Arrays.copyOf(wire, header.length));

    EmbeddedChannel ch = channel();
    List<Object> out = decode(wire, 3, ch); // also checks reassembly across reads
    assertEquals(1, out.size());
    Frame.Packet p = assertInstanceOf(Frame.Packet.class, out.get(0));
    assertEquals("job-7", p.jobId());
    assertEquals(-2, p.key());
    assertEquals(DST, p.dstAddress());
    assertEquals("an IP packet", p.payload().toString(StandardCharsets.US_ASCII));
    assertEquals(1, p.refCnt());
    assertTrue(p.release());
    assertEquals(0, p.refCnt());
    assertFalse(ch.finish());
  }

  @Test
  void severalFramesInOneRead() {
    ByteBuf a = Unpooled.wrappedBuffer(new byte[] {1, 2, 3});
    ByteBuf all = Unpooled.buffer();
    all.writeBytes(encode(new Frame.Hello("n2", 9)));
    all.writeBytes(encode(new Frame.Packet("j", DST, a)));
    all.writeBytes(encode(new Frame.Marker("j", 0)));
    byte[] wire = ByteBufUtil.getBytes(all);
    all.release();
    EmbeddedChannel ch = channel();
    List<Object> out = decode(wire, wire.length, ch);
    assertEquals(3, out.size());
    assertEquals(new Frame.Hello("n2", 9), out.get(0));
    Frame.Packet p = (Frame.Packet) out.get(1);
    assertArrayEquals(new byte[] {1, 2, 3}, ByteBufUtil.getBytes(p.payload()));
    p.release();
    assertEquals(new Frame.Marker("j", 0), out.get(2));
    assertFalse(ch.finish());
  }

  @Test
  void largestPacketFitsAndOneByteMoreIsRefused() {
    int max = FrameCodec.maxPayload("job");
    ByteBuf big = Unpooled.buffer(max).writeZero(max);
    byte[] wire = encode(new Frame.Packet("job", DST, big));
    assertEquals(FrameCodec.LENGTH_FIELD_BYTES + FrameCodec.MAX_FRAME_LENGTH, wire.length);
    EmbeddedChannel in = channel();
    List<Object> out = decode(wire, 65536, in);
    Frame.Packet p = (Frame.Packet) out.get(0);
    assertEquals(max, p.payload().readableBytes());
    p.release();
    assertFalse(in.finish());

    ByteBuf tooBig = Unpooled.buffer(max + 1).writeZero(max + 1);
    EmbeddedChannel ch = channel();
    assertThrows(
        EncoderException.class, () -> ch.writeOutbound(new Frame.Packet("job", DST, tooBig)));
    assertEquals(0, tooBig.refCnt(), "a refused packet is released");
    assertFalse(ch.finish());
  }

  static Stream<Arguments> malformed() {
    return Stream.of(
        Arguments.of("empty body", bytes(0, 0, 0, 0)),
        Arguments.of("unknown type", bytes(0, 0, 0, 1, 9)),
        Arguments.of(
            "HELLO of another version",
            bytes(0, 0, 0, 13, 1, 1, 2, 'n', '1', 0, 0, 0, 0, 0, 0, 0, 1)),
        Arguments.of("HELLO truncated", bytes(0, 0, 0, 6, 1, 2, 2, 'n', '1', 0)),
        Arguments.of(
            "HELLO with trailing bytes",
            bytes(0, 0, 0, 14, 1, 2, 2, 'n', '1', 0, 0, 0, 0, 0, 0, 0, 1, 7)),
        Arguments.of("empty name", bytes(0, 0, 0, 11, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1)),
        Arguments.of("name longer than the frame", bytes(0, 0, 0, 5, 1, 2, 40, 'n', '1')),
        Arguments.of(
            "name not UTF-8", bytes(0, 0, 0, 13, 1, 2, 2, 0xC3, 0x28, 0, 0, 0, 0, 0, 0, 0, 1)),
        Arguments.of("PACKET without key", bytes(0, 0, 0, 7, 2, 1, 'j', 0, 0, 0, 0)),
        Arguments.of(
            "PACKET without destination",
            bytes(0, 0, 0, 13, 2, 1, 'j', 0, 0, 0, 0, 0, 0, 0, 1, 198, 19)),
        Arguments.of(
            "MARKER truncated", bytes(0, 0, 0, 15, 3, 1, 'j', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0)),
        Arguments.of(
            "MARKER with trailing bytes",
            bytes(0, 0, 0, 20, 3, 1, 'j', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0)),
        Arguments.of(
            "MARKER with negative epoch",
            bytes(
                0, 0, 0, 19, 3, 1, 'j', 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                0xFF, 0xFF)),
        Arguments.of("length above 256 KiB", bytes(0, 4, 0, 1, 2, 1, 'j')),
        Arguments.of("length of 4 GiB", bytes(0xFF, 0xFF, 0xFF, 0xFF, 1)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("malformed")
  void malformedFrameClosesTheChannel(String what, byte[] wire) {
    EmbeddedChannel ch = channel();
    ByteBuf in = Unpooled.wrappedBuffer(wire);
    ch.writeInbound(in);
    assertNull(ch.readInbound(), what + ": nothing decoded");
    assertFalse(ch.isOpen(), what + ": channel closed");
    assertEquals(0, in.refCnt(), what + ": input released");
    assertFalse(ch.finishAndReleaseAll());
  }

  @Test
  void framesBehindAMalformedOneAreDiscarded() {
    ByteBuf in = Unpooled.buffer();
    in.writeBytes(bytes(0, 0, 0, 1, 9)); // unknown type
    in.writeBytes(encode(new Frame.Packet("j", DST, Unpooled.wrappedBuffer(new byte[] {1}))));
    in.writeBytes(encode(new Frame.Marker("j", 1)));
    EmbeddedChannel ch = channel();
    ch.writeInbound(in);
    assertNull(ch.readInbound());
    assertFalse(ch.isOpen());
    assertEquals(0, in.refCnt());
    assertFalse(ch.finishAndReleaseAll());
  }

  @Test
  void framesRefuseBadFields() {
    assertThrows(IllegalArgumentException.class, () -> new Frame.Hello("", 1));
    assertThrows(IllegalArgumentException.class, () -> new Frame.Marker("x".repeat(256), 1));
    assertThrows(IllegalArgumentException.class, () -> new Frame.Marker("j", -1));
  }

  private static byte[] bytes(int... values) {
    byte[] b = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      b[i] = (byte) values[i];
    }
    return b;
  }
}
