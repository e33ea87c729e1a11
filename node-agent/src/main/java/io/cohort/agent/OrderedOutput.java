package io.cohort.agent;

import com.google.protobuf.ByteString;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.OutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * A job's stdout and stderr logs read in the order their chunks were written, as the order file
 * that the vhost's init keeps records it (native/src/output.h: one 4-byte little-endian record per
 * chunk, bit 31 the stream, the rest its length; a chunk's bytes are in its log before its record).
 * A position is an offset in the order file; the offset of each log there is the sum of the lengths
 * of its records before it. Consecutive chunks of one stream are sent together.
 */
final class OrderedOutput implements OutputLog.Source {
  private static final int RECORD = 4;
  private static final int STDERR_BIT = 0x80000000;
  private static final int RECORDS_PER_READ = 1024;

  private final RandomAccessFile order;
  private final RandomAccessFile[] logs;
  private final OutputStream only;
  private final byte[] records = new byte[RECORD * RECORDS_PER_READ];
  private long position;
  private final long[] at = new long[2];

  OrderedOutput(Path orderFile, Path stdout, Path stderr, OutputStream only) throws IOException {
    this.order = new RandomAccessFile(orderFile.toFile(), "r");
    this.logs =
        new RandomAccessFile[] {
          new RandomAccessFile(stdout.toFile(), "r"), new RandomAccessFile(stderr.toFile(), "r")
        };
    this.only = only;
  }

  @Override
  public long seek(long want) throws IOException {
    long target = Math.min(want, order.length()) & ~(RECORD - 1L);
    position = 0;
    at[0] = 0;
    at[1] = 0;
    while (position < target) {
      int n = readRecords(target);
      ByteBuffer b = ByteBuffer.wrap(records, 0, n).order(ByteOrder.LITTLE_ENDIAN);
      while (b.hasRemaining()) {
        int r = b.getInt();
        at[stream(r)] += length(r);
      }
      position += n;
    }
    return position;
  }

  @Override
  public boolean sendNew(Consumer<OutputChunk> sink, BooleanSupplier cancelled) throws IOException {
    long end = order.length() & ~(RECORD - 1L);
    if (end < position) {
      seek(end); // rolled back by a restart from an older checkpoint
    }
    boolean sent = false;
    Pending pending = new Pending();
    while (position < end && !cancelled.getAsBoolean()) {
      int n = readRecords(end);
      ByteBuffer b = ByteBuffer.wrap(records, 0, n).order(ByteOrder.LITTLE_ENDIAN);
      while (b.hasRemaining()) {
        long recordAt = position + b.position();
        int r = b.getInt();
        int s = stream(r);
        int len = length(r);
        if (wanted(s)) {
          if (pending.stream != s || pending.data.size() + len > OutputLog.READ_CHUNK) {
            sent |= pending.flush(sink);
            pending.start(s, recordAt);
          }
          byte[] data = new byte[len];
          logs[s].seek(at[s]);
          logs[s].readFully(data);
          pending.data.write(data, 0, len);
        }
        at[s] += len;
      }
      position += n;
    }
    sent |= pending.flush(sink);
    return sent;
  }

  /** Reads the next records up to {@code end} into {@link #records}; returns the bytes read. */
  private int readRecords(long end) throws IOException {
    int n = (int) Math.min(records.length, end - position);
    order.seek(position);
    order.readFully(records, 0, n);
    return n;
  }

  private boolean wanted(int stream) {
    return switch (only) {
      case OUTPUT_STREAM_STDOUT -> stream == 0;
      case OUTPUT_STREAM_STDERR -> stream == 1;
      default -> true;
    };
  }

  private static int stream(int record) {
    return (record & STDERR_BIT) != 0 ? 1 : 0;
  }

  private static int length(int record) {
    return record & ~STDERR_BIT;
  }

  /** Chunks of one stream gathered to be sent as one. */
  private static final class Pending {
    int stream = -1;
    long offset;
    final ByteArrayOutputStream data = new ByteArrayOutputStream();

    void start(int s, long at) {
      stream = s;
      offset = at;
      data.reset();
    }

    boolean flush(Consumer<OutputChunk> sink) {
      if (stream < 0 || data.size() == 0) {
        return false;
      }
      sink.accept(
          OutputChunk.newBuilder()
              .setOffset(offset)
              .setStream(
                  stream == 0
                      ? OutputStream.OUTPUT_STREAM_STDOUT
                      : OutputStream.OUTPUT_STREAM_STDERR)
              .setData(ByteString.copyFrom(data.toByteArray()))
              .build());
      data.reset();
      return true;
    }
  }

  @Override
  public void close() throws IOException {
    order.close();
    logs[0].close();
    logs[1].close();
  }
}
