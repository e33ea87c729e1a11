package io.cohort.cli;

import io.cohort.common.GrpcErrors;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.CheckpointProgress;
import io.cohort.proto.v1.CheckpointRequest;
import io.cohort.proto.v1.CohortGrpc;
import io.grpc.StatusRuntimeException;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "checkpoint",
    mixinStandardHelpOptions = true,
    description = {
      "Take a consistent checkpoint of a running job and print its id.",
      "The job is frozen for the dump only, then carries on; with --stop it ends once the "
          + "checkpoint is committed. If anything fails the checkpoint is discarded, the job "
          + "carries on and earlier checkpoints are untouched.",
      "The checkpoint does not depend on this command: if it is interrupted (Ctrl-C) or loses "
          + "its connection, the checkpoint goes on and commits or aborts as it would have "
          + "(`cohort ps JOB`, `cohort checkpoints JOB` tell which); if the coordinator itself "
          + "stops, the nodes let the job go on their own within their decision lease."
    })
final class CheckpointCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "JOB", description = "job id")
  String job;

  @Option(names = "--stop", description = "end the job once the checkpoint is committed")
  boolean stop;

  @Option(names = "--json", description = "print {\"checkpoint\": ID, \"job\": JOB, ...} as JSON")
  boolean json;

  @Override
  public Integer call() {
    try (Cli cli = Cli.forChange(connection, CohortGrpc.getCheckpointMethod())) {
      long t0 = System.nanoTime();
      boolean tty = Cli.interactive();
      Thread interrupted = new Thread(() -> cli.err.println(leftBehind(cli, "interrupted")));
      Runtime.getRuntime().addShutdownHook(interrupted);
      CheckpointInfo info = null;
      try {
        Iterator<CheckpointProgress> it =
            cli.call(3600)
                .checkpoint(CheckpointRequest.newBuilder().setJobId(job).setStop(stop).build());
        while (it.hasNext()) {
          CheckpointProgress p = it.next();
          if (p.hasResult()) {
            info = p.getResult();
          } else if (tty) {
            cli.err.printf("[%6.2fs] %s%n", (System.nanoTime() - t0) / 1e9, p.getMessage());
          }
        }
      } catch (StatusRuntimeException e) {
        if (GrpcErrors.answered(e)) {
          throw e; // the coordinator's own answer (an abort, a refusal) says what happened
        }
        cli.err.println(
            leftBehind(
                cli,
                "lost the "
                    + cli.where
                    + " ("
                    + e.getStatus().getCode()
                    + ": "
                    + describe(e)
                    + ")"));
        return 1;
      } finally {
        try {
          Runtime.getRuntime().removeShutdownHook(interrupted);
        } catch (IllegalStateException shuttingDown) {
          // the hook runs: the user pressed Ctrl-C
        }
      }
      if (info == null) {
        cli.err.println("cohort: the coordinator ended the checkpoint without a result");
        return 1;
      }
      if (json) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("checkpoint", info.getCheckpointId());
        m.put("job", info.getJobId());
        m.put("image_bytes", info.getImageBytes());
        m.put("total_ms", info.getTimings().getTotalMs());
        m.put("freeze_ms", info.getTimings().getFreezeMs());
        m.put("criu_ms", info.getTimings().getCriuMs());
        m.put("inflight_packets", info.getInflightPackets());
        m.put("inflight_bytes", info.getInflightBytes());
        m.put("tracked_files", info.getTrackedFiles());
        m.put("tracked_bytes_copied", info.getTrackedBytesCopied());
        m.put("tracked_capture_ms", info.getTrackedCaptureMs());
        m.put("stopped", info.getStoppedJob());
        cli.json(m);
      } else {
        cli.out.println(info.getCheckpointId());
      }
      if (tty || !json) {
        boolean spans = info.getVhostsList().stream().map(v -> v.getNode()).distinct().count() > 1;
        cli.err.printf(
            "cohort: checkpoint %s committed: %.1f MB, job frozen %d ms, total %d ms%s%s%s%n",
            info.getCheckpointId(),
            info.getImageBytes() / 1e6,
            info.getTimings().getFreezeMs(),
            info.getTimings().getTotalMs(),
            spans
                ? String.format(", %d packets in flight " + "recorded", info.getInflightPackets())
                : "",
            info.getTrackedFiles() > 0
                ? String.format(
                    ", %d open files tracked (%.1f MB copied, %d ms)",
                    info.getTrackedFiles(),
                    info.getTrackedBytesCopied() / 1e6,
                    info.getTrackedCaptureMs())
                : "",
            stop ? "; job stopped" : "");
      }
      return 0;
    }
  }

  /**
   * What happened to the checkpoint when this command stops following it before its end: the
   * coordinator daemon finishes it without this command (or, if the coordinator stopped, the next
   * one aborts it and the agents' leases let the job go); an embedded coordinator goes with this
   * process, and the next cohort command settles what it left.
   */
  private String leftBehind(Cli cli, String what) {
    String checkStatus =
        String.format(
            "`cohort ps %s` shows the job's state and `cohort checkpoints %s` whether the "
                + "checkpoint was committed",
            job, job);
    if (cli.embedded()) {
      return String.format(
          "%ncohort: %s: the checkpoint of job %s is abandoned: the job runs on (CRIU lets it go "
              + "when this process ends) and the next cohort command discards the checkpoint%s. %s",
          what,
          job,
          stop ? " and stops the job at its previous checkpoint, as asked" : "",
          checkStatus);
    }
    return String.format(
        "%ncohort: %s: the checkpoint of job %s goes on without this command: it commits or "
            + "aborts as it would have (if the coordinator itself stopped, the next one aborts it, "
            + "and the nodes let the job go within their decision lease). %s",
        what, job, checkStatus);
  }

  private static String describe(StatusRuntimeException e) {
    String d = e.getStatus().getDescription();
    return d != null ? d : String.valueOf(e.getStatus().getCause());
  }
}
