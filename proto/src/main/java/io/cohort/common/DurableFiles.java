package io.cohort.common;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * File operations that survive a crash: write to a temporary name, fsync, rename, fsync the
 * directory.
 */
public final class DurableFiles {
  private DurableFiles() {}

  public static void writeAtomically(Path file, byte[] bytes) {
    Path dir = file.toAbsolutePath().getParent();
    Path tmp = null;
    try {
      Files.createDirectories(dir);
      // A unique temporary name: several processes may rewrite the same record at once.
      tmp = Files.createTempFile(dir, "." + file.getFileName() + ".", ".tmp");
      try (FileChannel ch =
          FileChannel.open(tmp, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        while (buf.hasRemaining()) {
          ch.write(buf);
        }
        ch.force(true);
      }
      rename(tmp, file);
    } catch (IOException e) {
      try {
        if (tmp != null) {
          Files.deleteIfExists(tmp);
        }
      } catch (IOException ignored) {
        // the original error is the one to report
      }
      throw failure("cannot write " + file, e);
    }
  }

  /** Atomic rename followed by an fsync of the target's directory. */
  public static void rename(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException("atomic rename not supported from " + from + " to " + to, e);
    }
    fsyncDirectory(to.toAbsolutePath().getParent());
  }

  public static void fsync(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      ch.force(true);
    }
  }

  public static void fsyncDirectory(Path dir) throws IOException {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    }
  }

  /** Removes a tree if it exists; never follows symbolic links out of it. */
  public static void deleteTree(Path root) {
    if (!Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot remove " + root, e);
    }
  }

  /** An IOException as a CohortException, RESOURCE_EXHAUSTED when the disk is full. */
  public static CohortException failure(String what, IOException e) {
    String m = String.valueOf(e.getMessage());
    if (m.contains("No space left on device")) {
      return new CohortException(
          CohortException.Kind.RESOURCE_EXHAUSTED,
          what + ": no space left on device; free some space (e.g. `cohort rm` old checkpoints)",
          e);
    }
    return new CohortException(CohortException.Kind.INTERNAL, what + ": " + m, e);
  }
}
