package io.cohort.cli;

import io.cohort.proto.v1.RestartRequest;
import io.cohort.proto.v1.RestartResponse;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "restart", mixinStandardHelpOptions = true,
    description = {"Restart a job from a checkpoint (CKPT = JOB.EPOCH), or from the latest "
        + "checkpoint of JOB, under the same job id.",
        "The job's output continues in the same log; restarting from an older checkpoint "
        + "rolls the log back to where it stood then (the cut-off bytes are kept beside the "
        + "log as output.log.after-CKPT-TIME).",
        "The image is verified (sha256 of every file) first; a damaged image is refused.",
        "Without --detach, streams the new output and exits with the job's exit status."})
final class RestartCommand implements Callable<Integer> {
  @Mixin
  ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "CKPT|JOB", description = "checkpoint id or job id")
  String target;

  @Option(names = {"-d", "--detach"}, description = "return once the job runs again")
  boolean detach;

  @Option(names = "--replace", description = "if the job is running, end it first")
  boolean replace;

  @Option(names = "--nodes", split = ",", paramLabel = "NODE",
      description = "restore the job's vhost on this node instead of where it was "
          + "checkpointed; the image is copied there and verified first")
  java.util.List<String> nodes = java.util.List.of();

  @Option(names = "--json", description = "print {\"job\": ID, \"checkpoint\": CKPT, ...} as JSON")
  boolean json;

  @Override
  public Integer call() throws Exception {
    try (Cli cli = new Cli(connection)) {
      RestartResponse r = cli.call(3600).restart(RestartRequest.newBuilder().setTarget(target)
          .setReplace(replace).addAllNodes(nodes).build());
      if (json) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("job", r.getJob().getJobId());
        m.put("checkpoint", r.getCheckpointId());
        m.put("restart_ms", r.getRestartMs());
        m.put("incarnation", r.getJob().getIncarnation());
        m.put("inflight_packets", r.getInflightPackets());
        m.put("transferred_bytes", r.getTransferredBytes());
        cli.json(m);
      } else if (detach) {
        cli.out.println(r.getJob().getJobId());
      }
      if (!json || Cli.interactive()) {
        cli.err.printf("cohort: job %s restarted from checkpoint %s in %d ms%s%n",
            r.getJob().getJobId(), r.getCheckpointId(), r.getRestartMs(),
            r.getInflightPackets() == 0 ? "" : String.format(" (%d packets in flight at the "
                + "checkpoint re-injected)", r.getInflightPackets()));
      }
      cli.out.flush();
      if (detach) {
        return 0;
      }
      cli.follow(r.getJob().getJobId(), r.getOutputOffset());
      return cli.await(r.getJob().getJobId());
    }
  }
}
