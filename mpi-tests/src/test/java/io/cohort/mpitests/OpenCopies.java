package io.cohort.mpitests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Copies of this checkout's programs that other accounts can run, in a directory of their own under
 * /var/tmp (world-readable, removed on close). A checkout may sit under a home no one else may
 * enter; the tests open copies rather than the directories above it. Not under /tmp: a vhost has a
 * /tmp of its own, and the copies must be seen from inside the job's vhosts too.
 */
final class OpenCopies implements AutoCloseable {
  private final Path dir;

  OpenCopies() throws IOException {
    dir = Files.createTempDirectory(Path.of("/var/tmp"), "cohort-it-");
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  /**
   * The `cohort` script, its jar and the native program the CLI itself runs (its TLS to a
   * coordinator over TCP), laid out as the script expects.
   */
  Path cli() throws IOException {
    copy(CohortHarness.REPO.resolve("cli/target/cohort.jar"), "cli/target/cohort.jar");
    copy(
        CohortHarness.REPO.resolve("native/build/cohort-tls-dial"), "native/build/cohort-tls-dial");
    return copy(CohortHarness.REPO.resolve("cohort"), "cohort");
  }

  /** {@code file} at {@code name} in the directory, readable and runnable by all. */
  Path copy(Path file, String name) throws IOException {
    Path to = dir.resolve(name);
    for (Path p = to.getParent(); !p.equals(dir); p = p.getParent()) {
      Files.createDirectories(p);
      Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
    Files.copy(file, to, StandardCopyOption.REPLACE_EXISTING);
    Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rwxr-xr-x"));
    return to;
  }

  @Override
  public void close() throws IOException {
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
