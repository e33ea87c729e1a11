package io.cohort.agent;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Letting a dump's tasks go: the decision written to CRIU's held post-dump hook ("commit": resume,
 * or end them for --stop; "abort": they carry on), then the wait for CRIU to unlock their network
 * and exit, and how long they stayed frozen.
 */
final class TaskRelease {
  private static final Logger log = LoggerFactory.getLogger(TaskRelease.class);

  private final Duration criuTimeout;
  private final ImageStore images;

  TaskRelease(Duration criuTimeout, ImageStore images) {
    this.criuTimeout = criuTimeout;
    this.images = images;
  }

  /** Tells the held hook what to do; called under the dump's monitor. */
  void decide(ParticipantDump dump, boolean commit) {
    try {
      dump.session.decide(commit);
    } catch (IOException e) {
      log.warn("{}: cannot answer the post-dump hook: {}", dump, e.toString());
    }
  }

  /**
   * Waits for CRIU to let the tasks go after a decision; returns how long they were frozen. The
   * answer is queued for the hook: CRIU finishes its dump (if still dumping), reads it and lets the
   * tasks go. Killing CRIU instead could leave them with its network lock.
   */
  long await(ParticipantDump dump, boolean commit) {
    DumpSession s = dump.session;
    Integer rc = s.awaitExit(criuTimeout);
    if (rc == null) {
      log.error("{}: criu did not let the tasks go within {}; killing it", dump, criuTimeout);
      s.killCriu();
    } else if (commit && rc != 0) {
      log.warn("{}: criu exited with {} after releasing the tasks", dump, rc);
    }
    if (commit && dump.cut != null) {
      dump.cut.released(dump.record.getVhostId(), dump.stop); // network unlocked now
    }
    String vhost = dump.record.getVhostId();
    Path dumpLog = images.pendingDir(dump.ckpt, vhost).resolve("dump.log");
    if (!Files.exists(dumpLog)) {
      dumpLog = images.committedDir(dump.ckpt, vhost).resolve("dump.log");
    }
    return CriuLog.frozenMillis(dumpLog).orElse(s.frozenMillis());
  }
}
