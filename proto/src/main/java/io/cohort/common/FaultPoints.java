package io.cohort.common;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Named places in the checkpoint barrier where a test can stop a daemon, so that a fault (a killed
 * daemon, a node cut off, a killed client) lands inside a chosen phase however fast the phase is.
 * Off, and one environment lookup, unless the daemon was started with {@value #ENV} naming a
 * directory: then a daemon reaching point P appends a line to {@code P.reached} there and, while
 * {@code P.hold} exists, waits (at most {@link #HOLD_LIMIT}, so a test that dies never leaves a
 * daemon stuck). The points:
 *
 * <ul>
 *   <li>{@code coordinator.prepare}: the epoch is recorded open, no agent has been asked anything.
 *   <li>{@code agent.dump}: CRIU has written the image and holds the vhost frozen; the agent has
 *       not answered the coordinator (a dump that takes long).
 *   <li>{@code agent.seal}: the vhost runs again (with --stop: is still held), its image is not
 *       sealed yet.
 *   <li>{@code coordinator.commit}: every image is sealed and published; no record is written.
 *   <li>{@code coordinator.publish}: the record is written (committed); no agent has been told.
 * </ul>
 *
 * The model is Ratis' {@code CodeInjectionForTesting}: the hooks stay in the product, inert, so the
 * fault tests exercise the very code that runs in production.
 */
public final class FaultPoints {
  private static final Logger log = LoggerFactory.getLogger(FaultPoints.class);

  /** The environment variable naming the directory of holds. */
  public static final String ENV = "COHORT_FAULT_POINTS";

  /** The longest a hold keeps a daemon waiting. */
  public static final Duration HOLD_LIMIT = Duration.ofMinutes(2);

  private static final Path DIR = dir(System.getenv(ENV));

  private FaultPoints() {}

  private static Path dir(String value) {
    return value == null || value.isBlank() ? null : Path.of(value);
  }

  /**
   * The daemon reached {@code point} ({@code what}: which checkpoint and vhost, for the test to
   * read); waits while the test holds the point.
   */
  public static void reach(String point, String what) {
    if (DIR != null) {
      reach(DIR, point, what, HOLD_LIMIT);
    }
  }

  static void reach(Path dir, String point, String what, Duration limit) {
    try {
      Files.writeString(
          dir.resolve(point + ".reached"),
          what + "\n",
          StandardCharsets.UTF_8,
          StandardOpenOption.CREATE,
          StandardOpenOption.APPEND);
    } catch (IOException e) {
      log.warn("fault point {}: cannot record {}: {}", point, what, e.toString());
    }
    Path hold = dir.resolve(point + ".hold");
    if (!Files.exists(hold)) {
      return;
    }
    log.warn("fault point {}: held at {} while {} exists", point, what, hold);
    long deadline = System.nanoTime() + limit.toNanos();
    try {
      while (Files.exists(hold) && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    log.warn("fault point {}: {} goes on", point, what);
  }
}
