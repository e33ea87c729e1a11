package io.cohort.agent;

import io.cohort.common.DurableFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Who owns a dump in progress (the agent process that started it, in its pending directory's {@code
 * owner} file) and the sweep that removes the dumps whose owner died.
 */
final class PendingImages {
  private static final Logger log = LoggerFactory.getLogger(PendingImages.class);

  private PendingImages() {}

  /**
   * Names {@code owner} as the owner of the pending image {@code dir}: whole or not at all (a sweep
   * reads it at any time), but not durable (after a crash the owner is dead anyway).
   */
  static void writeOwner(Path dir, ProcessIdentity owner) throws IOException {
    Path tmp = dir.resolve(".owner.tmp");
    Files.writeString(tmp, owner.pid() + " " + owner.startTicks() + "\n");
    Files.move(tmp, dir.resolve("owner"), StandardCopyOption.ATOMIC_MOVE);
  }

  /**
   * Removes the pending images in {@code pending} whose owner is dead (an agent that died
   * mid-dump), and what earlier sweeps moved aside; returns them as CKPT/VHOST.
   */
  static List<String> removeAbandoned(Path pending) {
    List<String> removed = new java.util.ArrayList<>();
    if (!Files.isDirectory(pending)) {
      return removed;
    }
    try (Stream<Path> ckpts = Files.list(pending)) {
      for (Path c : ckpts.toList()) {
        if (c.getFileName().toString().startsWith(REMOVED)) {
          deleteQuietly(c); // again: a dead agent's CRIU may have written into it since
          continue;
        }
        try (Stream<Path> vhosts = Files.list(c)) {
          for (Path v : vhosts.toList()) {
            if (abandoned(v)) {
              log.info("removing abandoned pending image {}", v);
              // Moved aside first, in one rename: the dead agent's CRIU may still be writing
              // into it (through its open directory), which no sweep must mistake for an image
              // being created; what it writes there goes with the next sweep.
              Path aside =
                  pending.resolve(
                      REMOVED + c.getFileName() + "-" + v.getFileName() + "-" + System.nanoTime());
              Files.move(v, aside, StandardCopyOption.ATOMIC_MOVE);
              deleteQuietly(aside);
              removed.add(c.getFileName() + "/" + v.getFileName());
            }
          }
        }
        LocalImageStore.deleteIfEmpty(c);
      }
    } catch (IOException | java.io.UncheckedIOException e) {
      log.warn("cannot clean {}: {}", pending, e.toString());
    }
    return removed;
  }

  /**
   * A pending image whose owner process is dead. One without an owner file yet (or one that does
   * not read as an owner) is being created or removed right now, unless it is old (a crash between
   * mkdir and the owner file).
   */
  private static boolean abandoned(Path dir) {
    Path owner = dir.resolve("owner");
    try {
      String[] f = Files.readString(owner).trim().split(" ");
      if (f.length == 2) {
        return !new ProcessIdentity(Long.parseLong(f[0]), Long.parseLong(f[1])).isAlive();
      }
    } catch (NoSuchFileException | NumberFormatException e) {
      // being created or removed: judged by its age below
    } catch (IOException e) {
      return true;
    }
    try {
      return Files.getLastModifiedTime(dir).toMillis() < System.currentTimeMillis() - 600_000;
    } catch (IOException gone) {
      return false;
    }
  }

  /** Pending images being removed are moved aside under this prefix (not a checkpoint id). */
  private static final String REMOVED = ".removed-";

  private static void deleteQuietly(Path dir) {
    try {
      DurableFiles.deleteTree(dir);
    } catch (RuntimeException e) {
      log.info("{} not removed yet ({}); the next sweep tries again", dir, e.toString());
    }
  }
}
