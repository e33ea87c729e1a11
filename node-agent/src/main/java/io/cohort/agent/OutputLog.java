package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.proto.v1.OutputChunk;
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
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A job's output log on this node: written directly by the job's processes (so it survives
 * checkpoint and restart), read and followed by clients, and rolled back to its size at a
 * checkpoint when the job restarts from it.
 */
final class OutputLog {
  private static final Logger log = LoggerFactory.getLogger(OutputLog.class);
  private static final int READ_CHUNK = 64 * 1024;
  private static final long FOLLOW_POLL_MS = 100;

  private final VhostRecords records;
  private final String who;

  OutputLog(VhostRecords records, String node) {
    this.records = records;
    this.who = "agent " + node;
  }

  /**
   * Sends the output log from the request's offset; with follow, keeps sending until the vhost is
   * no longer running (then sends the rest) or {@code cancelled} says stop. {@code sink} may block
   * (flow control): nothing is read ahead of what it takes.
   */
  void read(ReadOutputRequest req, Consumer<OutputChunk> sink, BooleanSupplier cancelled) {
    VhostRecord rec = records.load(req.getVhostId());
    Path logFile = Path.of(rec.getLogPath());
    long offset = Math.max(0, req.getOffset());
    byte[] buf = new byte[READ_CHUNK];
    try (RandomAccessFile f = new RandomAccessFile(logFile.toFile(), "r")) {
      boolean finalPass = false;
      while (!cancelled.getAsBoolean()) {
        boolean running =
            req.getFollow()
                && records.observe(req.getVhostId()).getState() == VhostState.VHOST_STATE_RUNNING;
        long len = f.length();
        if (len < offset) {
          offset = len; // rolled back by a restart from an older checkpoint
        }
        while (offset < len && !cancelled.getAsBoolean()) {
          f.seek(offset);
          int n = f.read(buf, 0, (int) Math.min(buf.length, len - offset));
          if (n <= 0) {
            break;
          }
          sink.accept(
              OutputChunk.newBuilder()
                  .setOffset(offset)
                  .setData(com.google.protobuf.ByteString.copyFrom(buf, 0, n))
                  .build());
          offset += n;
        }
        if (!running) {
          if (req.getFollow() && !finalPass) {
            finalPass = true; // one more pass picks up what was written just before the end
            continue;
          }
          return;
        }
        Thread.sleep(FOLLOW_POLL_MS);
      }
    } catch (FileNotFoundException e) {
      throw CohortException.notFound(
          "output log %s of vhost %s is missing", logFile, req.getVhostId());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot read " + logFile, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** A rolled-back output log, and how to put it back if the restore fails. */
  record Rollback(Path log, long size, Path saved) {
    void undo() {
      if (saved == null) {
        return;
      }
      try {
        Files.write(log, Files.readAllBytes(saved), StandardOpenOption.APPEND);
        Files.delete(saved);
      } catch (IOException e) {
        LoggerFactory.getLogger(OutputLog.class)
            .error("cannot put back {} into {}: {}", saved, log, e.toString());
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
        return new Rollback(logFile, want, null);
      }
      Path saved =
          logFile.resolveSibling(
              logFile.getFileName() + ".after-" + ckpt + "-" + System.currentTimeMillis());
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
      return new Rollback(logFile, want, saved);
    } catch (IOException e) {
      throw DurableFiles.failure("cannot roll back " + logFile, e);
    }
  }
}
