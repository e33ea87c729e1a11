package io.cohort.agent;

import com.google.protobuf.DiscardUnknownFieldsParser;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads CRIU's protobuf image files (the layout of CRIU 4.2, criu/image.c and criu/protobuf.c): a
 * 32-bit little-endian common magic, then the file's own magic, then entries, each a 32-bit
 * little-endian length followed by that many bytes of one protobuf message. The magics are CRIU's
 * (criu/include/magic.h). Only what {@link ImageCredentials} needs; the messages are the subsets in
 * {@code proto/src/main/proto/cohort/criu/images.proto}.
 */
final class CriuImageFile {
  /** Heads every image file but the inventory ("Sarov"). */
  static final int COMMON_MAGIC = 0x54564319;

  static final int PSTREE_MAGIC = 0x50273030;
  static final int CORE_MAGIC = 0x55053847;
  static final int MM_MAGIC = 0x57492820;
  static final int FILES_MAGIC = 0x56303138;

  private CriuImageFile() {}

  /** An image file that is not what CRIU would have written (or is missing). */
  static final class BadImage extends IOException {
    private static final long serialVersionUID = 1L;

    BadImage(Path file, String what) {
      super(file.getFileName() + ": " + what);
    }
  }

  /** Every entry of {@code file}, in order. */
  static <T extends Message> List<T> readAll(Path file, int magic, Parser<T> parser)
      throws IOException {
    ByteBuffer b = open(file, magic);
    List<T> out = new ArrayList<>();
    while (b.hasRemaining()) {
      out.add(next(file, b, parser));
    }
    return out;
  }

  /**
   * The first entry of {@code file}: all CRIU reads of a core or mm image (a forged second entry
   * changes nothing it restores).
   */
  static <T extends Message> T readFirst(Path file, int magic, Parser<T> parser)
      throws IOException {
    ByteBuffer b = open(file, magic);
    if (!b.hasRemaining()) {
      throw new BadImage(file, "no entry");
    }
    return next(file, b, parser);
  }

  private static ByteBuffer open(Path file, int magic) throws IOException {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new BadImage(file, "missing");
    }
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    if (b.remaining() < 8) {
      throw new BadImage(file, "shorter than its magic");
    }
    int common = b.getInt();
    int own = b.getInt();
    if (common != COMMON_MAGIC || own != magic) {
      throw new BadImage(
          file,
          String.format(
              "magic %08x %08x, not %08x %08x (not a CRIU 4.x image of this kind)",
              common, own, COMMON_MAGIC, magic));
    }
    return b;
  }

  /** One entry's message, as {@link #readAll} parses each. */
  static <T extends Message> T parse(byte[] entry, Parser<T> parser)
      throws InvalidProtocolBufferException {
    return parse(entry, 0, entry.length, parser);
  }

  private static <T extends Message> T parse(byte[] b, int at, int size, Parser<T> parser)
      throws InvalidProtocolBufferException {
    // Cohort's messages name the few fields it reads; the rest (most of a core image: a thread's
    // registers, signals, scheduling) is skipped, not kept as unknown fields, which cost the most
    // of a parse.
    return DiscardUnknownFieldsParser.wrap(parser).parseFrom(b, at, size);
  }

  private static <T extends Message> T next(Path file, ByteBuffer b, Parser<T> parser)
      throws IOException {
    if (b.remaining() < 4) {
      throw new BadImage(file, "truncated entry length at byte " + b.position());
    }
    int at = b.position();
    long size = Integer.toUnsignedLong(b.getInt());
    if (size > b.remaining()) {
      throw new BadImage(
          file, "entry at byte " + at + " of " + size + " bytes, " + b.remaining() + " left");
    }
    try {
      T entry = parse(b.array(), b.position(), (int) size, parser);
      b.position(b.position() + (int) size);
      return entry;
    } catch (InvalidProtocolBufferException e) {
      throw new BadImage(file, "entry at byte " + at + ": " + e.getMessage());
    }
  }
}
