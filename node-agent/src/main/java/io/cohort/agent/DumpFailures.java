package io.cohort.agent;

import io.cohort.common.CohortException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;

/**
 * Why a dump failed, told to the user: the cause read from CRIU's log (which is kept under the
 * agent's home since the pending image is discarded), a full image store, a timeout; always with
 * what became of the job (it carries on).
 */
final class DumpFailures {
  private final AgentConfig config;
  private final ImageStore images;

  DumpFailures(AgentConfig config, ImageStore images) {
    this.config = config;
    this.images = images;
  }

  CohortException explain(ParticipantDump dump, DumpSession.Dumped d) {
    String vhost = dump.record.getVhostId();
    if (d.outcome() == DumpSession.Outcome.DUMPED) {
      return CohortException.precondition(
          "checkpoint %s failed: the job's output log %s could "
              + "not be read at the dump (was it removed?). The job carries on.",
          dump.ckpt, dump.record.getLogPath());
    }
    if (d.outcome() == DumpSession.Outcome.TIMED_OUT) {
      return new CohortException(
          CohortException.Kind.DEADLINE_EXCEEDED,
          "checkpoint "
              + dump.ckpt
              + " failed: criu did not dump vhost "
              + vhost
              + " within "
              + config.criuTimeout()
              + ". The job carries on.");
    }
    Integer rc = dump.session.awaitExit(Duration.ofSeconds(10));
    Path log = keepFailedLog(dump.ckpt, vhost);
    CriuLogCause.Cause cause = CriuLogCause.of(log);
    if (cause.kind() == CriuLogCause.Kind.NO_SPACE) {
      return new CohortException(
          CohortException.Kind.RESOURCE_EXHAUSTED,
          "checkpoint "
              + dump.ckpt
              + " failed: the image store "
              + config.imagesDir()
              + " is full (CRIU: No space left on device); free some space (e.g. `cohort rm` old"
              + " checkpoints). The job carries"
              + " on. Full CRIU log: "
              + log);
    }
    return CohortException.internal(
        "checkpoint "
            + dump.ckpt
            + " failed: criu dump of vhost "
            + vhost
            + " exited with "
            + rc
            + ": "
            + cause.line()
            + ". The job carries on. Full CRIU log: "
            + log,
        null);
  }

  /** Keeps CRIU's log of a failed dump (the pending image is discarded) for the user. */
  private Path keepFailedLog(String ckpt, String vhost) {
    Path from = images.pendingDir(ckpt, vhost).resolve("dump.log");
    Path to = config.home().resolve("logs").resolve("failed-dump-" + ckpt + "-" + vhost + ".log");
    try {
      Files.createDirectories(to.getParent());
      Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
      return to;
    } catch (IOException e) {
      return from; // e.g. the disk is full: quote what can still be read now
    }
  }
}
