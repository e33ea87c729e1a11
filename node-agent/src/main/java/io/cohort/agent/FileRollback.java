package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.proto.v1.TrackedFile;
import io.cohort.proto.v1.TrackedFileKind;
import io.cohort.proto.v1.TrackedFiles;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Returns the files a job had open for writing at a checkpoint (recorded by {@link FileTracker}) to
 * their state then, before CRIU restores the job. {@link #check} changes nothing and refuses,
 * naming the file, what cannot be returned; {@link #apply} does it, keeping what it cuts off or
 * overwrites beside each file ({@code FILE.after-CKPT-TIME}), and can be undone if the restore
 * fails.
 */
final class FileRollback {
  private static final Logger log = LoggerFactory.getLogger(FileRollback.class);

  private FileRollback() {}

  /** Refuses (FAILED_PRECONDITION, naming the file) a file that cannot be returned. */
  static void check(TrackedFiles tracked, Path criuDir, String ckpt) {
    for (TrackedFile t : tracked.getFilesList()) {
      String why = problem(t, criuDir);
      if (why != null) {
        throw CohortException.precondition(
            "cannot restart from checkpoint %s: the job's file %s %s. Put the file back as it "
                + "was, or restart from a later checkpoint",
            ckpt, t.getPath(), why);
      }
    }
  }

  private static String problem(TrackedFile t, Path criuDir) {
    Path file = Path.of(t.getPath());
    if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
      return "was deleted since the checkpoint";
    }
    try {
      long[] id = FileTracker.deviceAndInode(file);
      if (id[0] != t.getDevice() || id[1] != t.getInode()) {
        return "was replaced by another file since the checkpoint (not the same inode)";
      }
      if (t.getKind() == TrackedFileKind.TRACKED_FILE_KIND_COPIED) {
        return Files.isRegularFile(criuDir.resolve(t.getCopyName()))
            ? null
            : "has no copy in the checkpoint's image";
      }
      long size = Files.size(file);
      if (size < t.getSize()) {
        return String.format(
            "is shorter (%d bytes) than at the checkpoint (%d bytes): it was truncated",
            size, t.getSize());
      }
      String tail = FileTracker.sha256(file, t.getSize() - t.getTailBytes(), t.getTailBytes());
      if (!tail.equals(t.getTailSha256())) {
        return "was changed inside the part written before the checkpoint, and no copy of it "
            + "was saved (it was open for writing only)";
      }
      return null;
    } catch (IOException e) {
      return "cannot be read (" + e.getMessage() + ")";
    }
  }

  /** Files returned to their checkpoint state, and how to put back what was there. */
  static final class Applied {
    private final List<Runnable> undo = new ArrayList<>();

    /** Puts back what {@link #apply} cut off or overwrote (the restore failed). */
    void undo() {
      for (int i = undo.size() - 1; i >= 0; i--) {
        undo.get(i).run();
      }
    }
  }

  /** Returns every tracked file to its checkpoint state; call {@link #check} first. */
  static Applied apply(TrackedFiles tracked, Path criuDir, String ckpt) {
    Applied applied = new Applied();
    try {
      for (TrackedFile t : tracked.getFilesList()) {
        Path file = Path.of(t.getPath());
        if (t.getKind() == TrackedFileKind.TRACKED_FILE_KIND_COPIED) {
          writeBack(file, criuDir.resolve(t.getCopyName()), t, ckpt, applied);
        } else {
          cut(file, t.getSize(), ckpt, applied);
        }
      }
    } catch (IOException e) {
      applied.undo();
      throw DurableFiles.failure("cannot return the job's files to checkpoint " + ckpt, e);
    }
    return applied;
  }

  /** Cuts an extended file back to its size, keeping the bytes cut off beside it. */
  private static void cut(Path file, long size, String ckpt, Applied applied) throws IOException {
    long have = Files.size(file);
    if (have == size) {
      return;
    }
    Path saved = aside(file, ckpt);
    try (InputStream in = Files.newInputStream(file)) {
      in.skipNBytes(size);
      Files.copy(in, saved);
    }
    DurableFiles.fsync(saved);
    truncate(file, size);
    log.info(
        "{} returned to checkpoint {}: {} bytes cut off, kept in {}",
        file,
        ckpt,
        have - size,
        saved);
    applied.undo.add(() -> putBack(file, saved, true));
  }

  /** Writes a copied file back over the file (same inode), keeping what was there beside it. */
  private static void writeBack(Path file, Path copy, TrackedFile t, String ckpt, Applied applied)
      throws IOException {
    if (Files.mismatch(file, copy) == -1) {
      return; // already as it was (e.g. another vhost of the job shares it)
    }
    Path saved = aside(file, ckpt);
    Files.copy(file, saved);
    DurableFiles.fsync(saved);
    overwrite(file, copy);
    log.info(
        "{} returned to checkpoint {} from its copy; what it held is kept in {}",
        file,
        ckpt,
        saved);
    applied.undo.add(() -> putBack(file, saved, false));
  }

  private static Path aside(Path file, String ckpt) {
    return file.resolveSibling(
        file.getFileName() + ".after-" + ckpt + "-" + System.currentTimeMillis());
  }

  private static void truncate(Path file, long size) throws IOException {
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(size);
      f.getFD().sync();
    }
  }

  /** Replaces the content of {@code file} in place (its inode, which CRIU reopens, stays). */
  private static void overwrite(Path file, Path from) throws IOException {
    try (InputStream in = Files.newInputStream(from);
        OutputStream out =
            Files.newOutputStream(
                file, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
      in.transferTo(out);
    }
    DurableFiles.fsync(file);
  }

  /** Undo of one step: the cut-off tail appended again, or the overwritten content back. */
  private static void putBack(Path file, Path saved, boolean appendTail) {
    try {
      if (appendTail) {
        try (OutputStream out = Files.newOutputStream(file, StandardOpenOption.APPEND)) {
          Files.copy(saved, out);
        }
      } else {
        overwrite(file, saved);
      }
      Files.delete(saved);
    } catch (IOException e) {
      log.error("cannot put back {} into {}: {}", saved, file, e.toString());
    }
  }
}
