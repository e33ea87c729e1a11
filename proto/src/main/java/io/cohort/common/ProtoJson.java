package io.cohort.common;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Protocol Buffers messages as JSON files: the on-disk format of records and manifests. */
public final class ProtoJson {
  private static final JsonFormat.Printer PRINTER =
      JsonFormat.printer().preservingProtoFieldNames().omittingInsignificantWhitespace();
  private static final JsonFormat.Printer PRETTY = JsonFormat.printer().preservingProtoFieldNames();
  private static final JsonFormat.Parser PARSER = JsonFormat.parser().ignoringUnknownFields();

  private ProtoJson() {}

  public static String print(Message m) {
    try {
      return PRINTER.print(m);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    }
  }

  public static String pretty(Message m) {
    try {
      return PRETTY.print(m);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Writes {@code m} to {@code file} atomically and durably (see {@link DurableFiles}). */
  public static byte[] write(Path file, Message m) {
    byte[] bytes = (pretty(m) + "\n").getBytes(StandardCharsets.UTF_8);
    DurableFiles.writeAtomically(file, bytes);
    return bytes;
  }

  /** Reads a message of the builder's type from {@code file}; a damaged file is DATA_LOSS. */
  public static <B extends Message.Builder> B read(Path file, B builder) {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
    return parse(text, builder, file.toString());
  }

  public static <B extends Message.Builder> B parse(String text, B builder, String what) {
    try {
      PARSER.merge(text, builder);
      return builder;
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      throw CohortException.dataLoss(
          "%s is damaged (not a valid record: %s)", what, e.getMessage());
    }
  }
}
