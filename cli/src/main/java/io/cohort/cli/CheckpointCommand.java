package io.cohort.cli;

import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.CheckpointProgress;
import io.cohort.proto.v1.CheckpointRequest;
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
          + "carries on and earlier checkpoints are untouched."
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
    try (Cli cli = Cli.forChange(connection)) {
      long t0 = System.nanoTime();
      boolean tty = Cli.interactive();
      Iterator<CheckpointProgress> it =
          cli.call(3600)
              .checkpoint(CheckpointRequest.newBuilder().setJobId(job).setStop(stop).build());
      CheckpointInfo info = null;
      while (it.hasNext()) {
        CheckpointProgress p = it.next();
        if (p.hasResult()) {
          info = p.getResult();
        } else if (tty) {
          cli.err.printf("[%6.2fs] %s%n", (System.nanoTime() - t0) / 1e9, p.getMessage());
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
}
