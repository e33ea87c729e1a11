package io.cohort.agent;

import com.google.protobuf.ByteString;
import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.proto.v1.JobFile;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.OutputStream;
import io.cohort.proto.v1.ReadOutputRequest;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A job's output on this node: its stdout and stderr logs and the order of their chunks, written by
 * the vhost's init (files, so they survive checkpoint and restart; see {@link JobFiles}), read and
 * followed by clients, and rolled back to their size at a checkpoint when the job restarts from it.
 * A vhost started before stderr was kept apart has one log of both, written by the job's processes
 * directly.
 */
final class OutputLog {
  private static final Logger log = LoggerFactory.getLogger(OutputLog.class);
  static final int READ_CHUNK = 64 * 1024;
  private static final long FOLLOW_POLL_MS = 100;

  private final VhostRecords records;
  private final String who;

  OutputLog(VhostRecords records, String node) {
    this.records = records;
    this.who = "agent " + node;
  }

  /**
   * Sends the vhost's output from the request's position; with follow, keeps sending until the
   * vhost is no longer running (then sends the rest) or {@code cancelled} says stop. {@code sink}
   * may block (flow control): nothing is read ahead of what it takes.
   */
  void read(ReadOutputRequest req, Consumer<OutputChunk> sink, BooleanSupplier cancelled) {
    VhostRecord rec = records.load(req.getVhostId());
    Optional<JobFile> order = JobFiles.find(rec.getJobFilesList(), JobFiles.ORDER);
    Optional<JobFile> stderr = JobFiles.find(rec.getJobFilesList(), JobFiles.STDERR);
    Path logFile = Path.of(rec.getLogPath());
    try {
      Source source =
          order.isPresent() && stderr.isPresent()
              ? new OrderedOutput(
                  Path.of(order.get().getPath()),
                  logFile,
                  Path.of(stderr.get().getPath()),
                  req.getOnly())
              : new PlainOutput(logFile, req.getOnly());
      try (source) {
        follow(req, source, sink, cancelled);
      }
    } catch (FileNotFoundException e) {
      throw CohortException.notFound(
          "output of vhost %s is missing (%s)", req.getVhostId(), e.getMessage());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot read the output of vhost " + req.getVhostId(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** A vhost's output as a sequence of chunks at positions. */
  interface Source extends AutoCloseable {
    /** Moves to {@code position} (clamped to what there is); returns where it is. */
    long seek(long position) throws IOException;

    /** Sends what was written after the current position; false if there was nothing. */
    boolean sendNew(Consumer<OutputChunk> sink, BooleanSupplier cancelled) throws IOException;

    @Override
    void close() throws IOException;
  }

  private void follow(
      ReadOutputRequest req, Source source, Consumer<OutputChunk> sink, BooleanSupplier cancelled)
      throws IOException, InterruptedException {
    source.seek(Math.max(0, req.getOffset()));
    boolean finalPass = false;
    while (!cancelled.getAsBoolean()) {
      boolean running =
          req.getFollow()
              && records.observe(req.getVhostId()).getState() == VhostState.VHOST_STATE_RUNNING;
      source.sendNew(sink, cancelled);
      if (!running) {
        if (req.getFollow() && !finalPass) {
          finalPass = true; // one more pass picks up what was written just before the end
          continue;
        }
        return;
      }
      Thread.sleep(FOLLOW_POLL_MS);
    }
  }

  /** One log of stdout and stderr together (a vhost started before they were kept apart). */
  private static final class PlainOutput implements Source {
    private final RandomAccessFile f;
    private final boolean none;
    private final byte[] buf = new byte[READ_CHUNK];
    private long offset;

    PlainOutput(Path log, OutputStream only) throws IOException {
      this.f = new RandomAccessFile(log.toFile(), "r");
      this.none = only == OutputStream.OUTPUT_STREAM_STDERR; // nothing is known to be stderr
    }

    @Override
    public long seek(long position) throws IOException {
      offset = Math.min(position, f.length());
      return offset;
    }

    @Override
    public boolean sendNew(Consumer<OutputChunk> sink, BooleanSupplier cancelled)
        throws IOException {
      long len = f.length();
      if (len < offset) {
        offset = len; // rolled back by a restart from an older checkpoint
      }
      boolean sent = false;
      while (!none && offset < len && !cancelled.getAsBoolean()) {
        f.seek(offset);
        int n = f.read(buf, 0, (int) Math.min(buf.length, len - offset));
        if (n <= 0) {
          break;
        }
        sink.accept(
            OutputChunk.newBuilder()
                .setOffset(offset)
                .setData(ByteString.copyFrom(buf, 0, n))
                .build());
        offset += n;
        sent = true;
      }
      return sent;
    }

    @Override
    public void close() throws IOException {
      f.close();
    }
  }

  /**
   * A log brought back to a checkpoint, and how to put it back as it was if the restore fails:
   * {@code saved} holds the bytes cut off the end, or with {@code replaced} the whole log that was
   * at the path (null: nothing was cut, or no log was there).
   */
  record Rollback(Path log, Path saved, boolean replaced) {
    void undo() {
      try {
        if (replaced && saved == null) {
          Files.deleteIfExists(log);
        } else if (replaced) {
          DurableFiles.rename(saved, log);
        } else if (saved != null) {
          Files.write(log, Files.readAllBytes(saved), StandardOpenOption.APPEND);
          Files.delete(saved);
        }
      } catch (IOException e) {
        LoggerFactory.getLogger(OutputLog.class)
            .error("cannot put back {} as it was (from {}): {}", log, saved, e.toString());
      }
    }
  }

  /**
   * Brings the output log back to its size at the checkpoint (CRIU refuses a file whose size
   * changed, and restarting from a checkpoint means its later output never happened). The bytes cut
   * off are kept beside the log, so no output is ever lost.
   */
  Rollback rollBack(Path logFile, long want, String ckpt) {
    try (RandomAccessFile f = new RandomAccessFile(logFile.toFile(), "rw")) {
      long have = f.length();
      if (have <= want) {
        return new Rollback(logFile, null, false);
      }
      Path saved = keptBeside(logFile, ckpt);
      try (InputStream in = Files.newInputStream(logFile)) {
        in.skipNBytes(want);
        Files.copy(in, saved, StandardCopyOption.REPLACE_EXISTING);
      }
      DurableFiles.fsync(saved);
      f.setLength(want);
      f.getFD().sync();
      log.info(
          "{}: output log rolled back to checkpoint {} ({} bytes kept in {})",
          who,
          ckpt,
          have - want,
          saved);
      return new Rollback(logFile, saved, false);
    } catch (IOException e) {
      throw DurableFiles.failure("cannot roll back " + logFile, e);
    }
  }

  /**
   * Puts the log that an image copied from another node holds ({@code copy}, as it was at the
   * checkpoint) at its path, in one rename; the log that was there (another incarnation's) is kept
   * beside it, whole.
   */
  Rollback replace(Path logFile, Path copy, long want, String ckpt) {
    Path tmp = logFile.resolveSibling("." + logFile.getFileName() + ".restore");
    Path saved = null;
    try {
      Files.createDirectories(logFile.getParent());
      Files.copy(copy, tmp, StandardCopyOption.REPLACE_EXISTING);
      DurableFiles.fsync(tmp);
      if (Files.exists(logFile)) {
        saved = keptBeside(logFile, ckpt);
        try {
          Files.createLink(saved, logFile); // the same inode under the new name
        } catch (UnsupportedOperationException e) {
          Files.copy(logFile, saved);
          DurableFiles.fsync(saved);
        }
      }
      DurableFiles.rename(tmp, logFile);
    } catch (IOException e) {
      try {
        Files.deleteIfExists(tmp);
        if (saved != null) {
          Files.deleteIfExists(saved); // the log is still at its path, unchanged
        }
      } catch (IOException ignored) {
        // the first failure is the one to report
      }
      throw DurableFiles.failure("cannot put back " + logFile, e);
    }
    log.info(
        "{}: output log {} put back as at checkpoint {} from the image's copy ({} bytes){}",
        who,
        logFile,
        ckpt,
        want,
        saved == null ? "" : "; the log that was there is kept in " + saved);
    return new Rollback(logFile, saved, true);
  }

  /** Where what a restore cuts off or replaces of a log is kept. */
  private static Path keptBeside(Path logFile, String ckpt) {
    return logFile.resolveSibling(
        logFile.getFileName() + ".after-" + ckpt + "-" + System.currentTimeMillis());
  }
}
