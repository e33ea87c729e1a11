package io.cohort.drain;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.CorruptedFrameException;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.EncoderException;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.LengthFieldPrepender;
import io.netty.handler.codec.MessageToMessageCodec;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Frames to bytes and back. Sits after the length framing ({@link #newFrameDecoder()}, {@link
 * #newFramePrepender()}), so each inbound {@link ByteBuf} is exactly one frame body.
 *
 * <pre>
 * frame   = length:u32 body                    (length = size of body, 1 .. 262144)
 * body    = type:u8 fields
 * HELLO   = 1  version:u8(=2) name:str incarnation:i64
 * PACKET  = 2  job:str key:u64 dst:u32 payload:bytes   (payload = the rest of the body)
 * MARKER  = 3  job:str key:u64 epoch:i64               (epoch &ge; 0)
 * str     = len:u8(1..255) UTF-8 bytes
 * </pre>
 *
 * {@code key} is the sender's network key of the job (0: none; see {@link Frame}). All integers
 * big-endian. A body with an unknown type, a bad string length, missing or trailing bytes, or a
 * length above {@link #MAX_FRAME_LENGTH} is malformed: the codec logs why and closes the channel;
 * frames still buffered behind it are discarded.
 *
 * <p>Stateless, hence {@link Sharable}: one instance per overlay (it only carries the log prefix).
 * A PACKET is encoded without copying its payload (a composite buffer of header and payload) and
 * decoded as a retained slice of the received buffer.
 */
@Sharable
public final class FrameCodec extends MessageToMessageCodec<ByteBuf, Frame> {

  private static final Logger log = LoggerFactory.getLogger(FrameCodec.class);

  /** Largest frame body (type byte included), in bytes: 256 KiB. */
  public static final int MAX_FRAME_LENGTH = 256 * 1024;

  /** Size of the length prefix. */
  public static final int LENGTH_FIELD_BYTES = 4;

  /**
   * Version carried in HELLO; a peer with another version is refused. 2: PACKET and MARKER carry
   * the network key.
   */
  public static final int PROTOCOL_VERSION = 2;

  static final byte TYPE_HELLO = 1;
  static final byte TYPE_PACKET = 2;
  static final byte TYPE_MARKER = 3;

  private final String who;

  /**
   * @param who log prefix naming the speaker, e.g. "overlay n1:"
   */
  public FrameCodec(String who) {
    super(ByteBuf.class, Frame.class);
    this.who = who;
  }

  /** The inbound framing handler to put before this codec (a new one per channel). */
  public static LengthFieldBasedFrameDecoder newFrameDecoder() {
    // maxFrameLength counts the length field too; failFast rejects as soon as the
    // length is read, before buffering a too-long frame.
    return new LengthFieldBasedFrameDecoder(
        MAX_FRAME_LENGTH + LENGTH_FIELD_BYTES, 0, LENGTH_FIELD_BYTES, 0, LENGTH_FIELD_BYTES, true);
  }

  /** The outbound framing handler to put before this codec (stateless). */
  public static LengthFieldPrepender newFramePrepender() {
    return new LengthFieldPrepender(LENGTH_FIELD_BYTES);
  }

  /** Largest payload a PACKET for {@code jobId} can carry. */
  public static int maxPayload(String jobId) {
    return MAX_FRAME_LENGTH - 1 - 1 - utf8Length(jobId) - 8 - 4;
  }

  @Override
  protected void encode(ChannelHandlerContext ctx, Frame frame, List<Object> out) {
    if (frame instanceof Frame.Packet packet) {
      byte[] job = packet.jobId().getBytes(StandardCharsets.UTF_8);
      ByteBuf payload = packet.content();
      int headerLength = 1 + 1 + job.length + 8 + 4;
      int bodyLength = headerLength + payload.readableBytes();
      if (bodyLength > MAX_FRAME_LENGTH) {
        throw new EncoderException(
            "PACKET body of " + bodyLength + " bytes exceeds " + MAX_FRAME_LENGTH);
      }
      ByteBuf header = ctx.alloc().buffer(headerLength);
      header.writeByte(TYPE_PACKET);
      header.writeByte(job.length).writeBytes(job);
      header.writeLong(packet.key());
      header.writeInt(packet.dstAddress());
      // The encoder releases the Packet after encode(): keep our own reference.
      out.add(ctx.alloc().compositeBuffer(2).addComponents(true, header, payload.retain()));
    } else if (frame instanceof Frame.Marker marker) {
      byte[] job = marker.jobId().getBytes(StandardCharsets.UTF_8);
      ByteBuf buf = ctx.alloc().buffer(1 + 1 + job.length + 8 + 8);
      buf.writeByte(TYPE_MARKER);
      buf.writeByte(job.length).writeBytes(job);
      buf.writeLong(marker.key());
      buf.writeLong(marker.epoch());
      out.add(buf);
    } else if (frame instanceof Frame.Hello hello) {
      byte[] name = hello.nodeName().getBytes(StandardCharsets.UTF_8);
      ByteBuf buf = ctx.alloc().buffer(1 + 1 + 1 + name.length + 8);
      buf.writeByte(TYPE_HELLO);
      buf.writeByte(PROTOCOL_VERSION);
      buf.writeByte(name.length).writeBytes(name);
      buf.writeLong(hello.incarnation());
      out.add(buf);
    } else {
      throw new EncoderException("unknown frame " + frame);
    }
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    if (!ctx.channel().isActive()) {
      return; // closed after a malformed frame: drop what was buffered behind it
    }
    if (!in.isReadable()) {
      throw new CorruptedFrameException("empty frame");
    }
    byte type = in.readByte();
    switch (type) {
      case TYPE_HELLO -> {
        need(in, 1, "HELLO");
        int version = in.readUnsignedByte();
        if (version != PROTOCOL_VERSION) {
          throw new CorruptedFrameException(
              "HELLO with protocol version " + version + ", this node speaks " + PROTOCOL_VERSION);
        }
        String name = readString(in, "HELLO");
        need(in, 8, "HELLO");
        long incarnation = in.readLong();
        noTrailingBytes(in, "HELLO");
        out.add(new Frame.Hello(name, incarnation));
      }
      case TYPE_PACKET -> {
        String job = readString(in, "PACKET");
        need(in, 8 + 4, "PACKET");
        long key = in.readLong();
        int dst = in.readInt();
        out.add(new Frame.Packet(job, key, dst, in.readRetainedSlice(in.readableBytes())));
      }
      case TYPE_MARKER -> {
        String job = readString(in, "MARKER");
        need(in, 8 + 8, "MARKER");
        long key = in.readLong();
        long epoch = in.readLong();
        noTrailingBytes(in, "MARKER");
        if (epoch < 0) {
          throw new CorruptedFrameException("MARKER with negative epoch " + epoch);
        }
        out.add(new Frame.Marker(job, key, epoch));
      }
      default -> throw new CorruptedFrameException("unknown frame type " + type);
    }
  }

  /** Malformed input (from this codec or the length framing before it) closes the channel. */
  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (cause instanceof DecoderException) {
      String peer = ctx.channel().attr(PeerHandler.PEER).get();
      log.warn(
          "{} closing connection {} ({}): {}: {}",
          who,
          ctx.channel().remoteAddress(),
          peer == null ? "before HELLO" : peer,
          // The TLS handler's failures come this way too: a peer without a certificate of the
          // cluster, or one that does not speak TLS.
          cause.getCause() instanceof SSLException ? "TLS refused" : "malformed frame",
          cause.getCause() instanceof SSLException
              ? cause.getCause().getMessage()
              : cause.getMessage());
      ctx.close();
    } else {
      ctx.fireExceptionCaught(cause);
    }
  }

  private static String readString(ByteBuf in, String frame) {
    need(in, 1, frame);
    int length = in.readUnsignedByte();
    if (length == 0) {
      throw new CorruptedFrameException(frame + " with an empty string field");
    }
    need(in, length, frame);
    try {
      String value =
          StandardCharsets.UTF_8
              .newDecoder()
              .decode(in.nioBuffer(in.readerIndex(), length))
              .toString();
      in.skipBytes(length);
      return value;
    } catch (CharacterCodingException e) {
      throw new CorruptedFrameException(frame + " with a string field that is not UTF-8");
    }
  }

  private static void need(ByteBuf in, int bytes, String frame) {
    if (in.readableBytes() < bytes) {
      throw new CorruptedFrameException(
          frame + " truncated: needs " + bytes + " more bytes, has " + in.readableBytes());
    }
  }

  private static void noTrailingBytes(ByteBuf in, String frame) {
    if (in.isReadable()) {
      throw new CorruptedFrameException(frame + " with " + in.readableBytes() + " trailing bytes");
    }
  }

  private static int utf8Length(String s) {
    return s.getBytes(StandardCharsets.UTF_8).length;
  }
}
