package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.OutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job's stdout and stderr read back in the order the vhost's init recorded (the format of
 * native/src/output.h), from any position, one stream or both, and after a rollback.
 */
class OrderedOutputTest {
  @TempDir Path dir;

  private void write(int stream, String text) throws IOException {
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    Files.write(
        dir.resolve(stream == 0 ? "out" : "err"),
        b,
        StandardOpenOption.CREATE,
        StandardOpenOption.APPEND);
    int record = b.length | (stream == 1 ? 0x80000000 : 0);
    Files.write(
        dir.resolve("order"),
        ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(record).array(),
        StandardOpenOption.CREATE,
        StandardOpenOption.APPEND);
  }

  private List<OutputChunk> read(OutputStream only, long from) throws IOException {
    List<OutputChunk> got = new ArrayList<>();
    try (OrderedOutput o =
        new OrderedOutput(dir.resolve("order"), dir.resolve("out"), dir.resolve("err"), only)) {
      o.seek(from);
      o.sendNew(got::add, () -> false);
    }
    return got;
  }

  private static String text(List<OutputChunk> chunks) {
    StringBuilder s = new StringBuilder();
    for (OutputChunk c : chunks) {
      s.append(c.getStream() == OutputStream.OUTPUT_STREAM_STDERR ? "E:" : "O:")
          .append(c.getData().toStringUtf8());
    }
    return s.toString();
  }

  @Test
  void interleavedAsWrittenWithConsecutiveChunksOfAStreamTogether() throws IOException {
    write(0, "a1 ");
    write(0, "a2 ");
    write(1, "e1 ");
    write(0, "a3 ");
    write(1, "e2 ");
    List<OutputChunk> both = read(OutputStream.OUTPUT_STREAM_UNSPECIFIED, 0);
    assertEquals("O:a1 a2 E:e1 O:a3 E:e2 ", text(both));
    assertEquals(List.of(0L, 8L, 12L, 16L), both.stream().map(OutputChunk::getOffset).toList());
    // One stream: its chunks together, whatever the other wrote between them.
    assertEquals("O:a1 a2 a3 ", text(read(OutputStream.OUTPUT_STREAM_STDOUT, 0)));
    assertEquals("E:e1 e2 ", text(read(OutputStream.OUTPUT_STREAM_STDERR, 0)));
    // From a chunk's position (as a restart's output offset gives it): both logs from there.
    assertEquals("E:e1 O:a3 E:e2 ", text(read(OutputStream.OUTPUT_STREAM_UNSPECIFIED, 8)));
    // A position past the end (rolled back since) is the end; a partial record is not read.
    Files.write(dir.resolve("order"), new byte[] {1, 0}, StandardOpenOption.APPEND);
    assertEquals("", text(read(OutputStream.OUTPUT_STREAM_UNSPECIFIED, 400)));
  }

  @Test
  void aRollbackUnderTheReaderIsFollowed() throws IOException {
    write(0, "kept ");
    write(1, "cut ");
    try (OrderedOutput o =
        new OrderedOutput(
            dir.resolve("order"),
            dir.resolve("out"),
            dir.resolve("err"),
            OutputStream.OUTPUT_STREAM_UNSPECIFIED)) {
      List<OutputChunk> got = new ArrayList<>();
      o.sendNew(got::add, () -> false);
      assertEquals("O:kept E:cut ", text(got));
      // A restart from a checkpoint taken after "kept ": every file cut back, then new output.
      try (var ch =
          java.nio.channels.FileChannel.open(dir.resolve("order"), StandardOpenOption.WRITE)) {
        ch.truncate(4);
      }
      try (var ch =
          java.nio.channels.FileChannel.open(dir.resolve("err"), StandardOpenOption.WRITE)) {
        ch.truncate(0);
      }
      got.clear();
      o.sendNew(got::add, () -> false);
      assertEquals("", text(got));
      write(1, "again ");
      o.sendNew(got::add, () -> false);
      assertEquals("E:again ", text(got));
    }
  }
}
