package io.cohort.cli;

import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.RestartRequest;
import io.cohort.proto.v1.RestartResponse;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "restart",
    mixinStandardHelpOptions = true,
    description = {
      "Restart a job from a checkpoint (CKPT = JOB.EPOCH), or from the latest "
          + "checkpoint of JOB, under the same job id.",
      "The job's output continues in the same logs, and its standard input from where the "
          + "checkpoint left it; restarting from an older checkpoint rolls the stdout and stderr "
          + "logs back to where they stood then (the cut-off bytes are kept beside them as "
          + "FILE.after-CKPT-TIME).",
      "The image is verified (sha256 of every file) first; a damaged image is refused.",
      "Each vhost's image is taken from wherever an intact copy is (the node that wrote it, a "
          + "partner copy, a copy an earlier restart made), and the restart says which. Given a "
          + "JOB, it restarts from the newest checkpoint whose images can all be reached, and "
          + "says so when that is not the latest.",
      "Without --detach, streams the new output (stderr to stderr) and exits with the job's exit "
          + "status; as with `cohort run`, SIGUSR1 and SIGUSR2 are passed on to the job and "
          + "SIGTERM takes a checkpoint and stops it."
    })
final class RestartCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "CKPT|JOB", description = "checkpoint id or job id")
  String target;

  @Option(
      names = {"-d", "--detach"},
      description = "return once the job runs again")
  boolean detach;

  @Option(names = "--replace", description = "if the job is running, end it first")
  boolean replace;

  @Option(
      names = "--nodes",
      split = ",",
      paramLabel = "NODE",
      description = {
        "restore the job's vhosts on these nodes instead of where they were "
            + "checkpointed (all known and up; images are copied there and verified first). "
            + "Names all different: a set the vhosts are spread over evenly, in runs in the "
            + "order listed (--nodes n3 puts them all on n3); the vhosts left over, and with "
            + "more nodes than vhosts the vhosts themselves, go to the nodes with the fewest "
            + "running vhosts, and nodes left unused are named on stderr. A name repeated: the "
            + "node of each vhost in turn, one entry per vhost (--nodes n2,n3,n2)."
      })
  java.util.List<String> nodes = java.util.List.of();

  @Option(
      names = "--json",
      description =
          "print {\"job\": ID, \"checkpoint\": CKPT, "
              + "\"vhosts\": [{\"vhost\": ID, \"node\": NODE}, ...], \"unused_nodes\": [...], ...} as "
              + "JSON")
  boolean json;

  @Override
  public Integer call() throws Exception {
    try (Cli cli = Cli.forChange(connection, CohortGrpc.getRestartMethod())) {
      RestartResponse r =
          cli.call(3600)
              .restart(
                  RestartRequest.newBuilder()
                      .setTarget(target)
                      .setReplace(replace)
                      .addAllNodes(nodes)
                      .build());
      if (json) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("job", r.getJob().getJobId());
        m.put("checkpoint", r.getCheckpointId());
        m.put("restart_ms", r.getRestartMs());
        m.put("incarnation", r.getJob().getIncarnation());
        m.put("inflight_packets", r.getInflightPackets());
        m.put("transferred_bytes", r.getTransferredBytes());
        m.put("image_sources", PlacementReport.sources(r));
        if (!r.getNote().isEmpty()) {
          m.put("note", r.getNote());
        }
        m.put("vhosts", PlacementReport.json(r.getJob()));
        m.put("unused_nodes", PlacementReport.unused(nodes, r.getJob()));
        cli.json(m);
      } else if (detach) {
        cli.out.println(r.getJob().getJobId());
      }
      if (!json || Cli.interactive()) {
        cli.err.printf(
            "cohort: job %s restarted from checkpoint %s in %d ms%s: %s%n",
            r.getJob().getJobId(),
            r.getCheckpointId(),
            r.getRestartMs(),
            r.getInflightPackets() == 0
                ? ""
                : String.format(
                    " (%d packets in flight at the " + "checkpoint re-injected)",
                    r.getInflightPackets()),
            PlacementReport.where(r.getJob()));
      }
      PlacementReport.noteUnused(cli.err, nodes, r.getJob());
      if (!json || Cli.interactive()) {
        if (!r.getNote().isEmpty()) {
          cli.err.println("cohort: note: " + r.getNote());
        }
        PlacementReport.noteSources(cli.err, r);
      }
      cli.out.flush();
      if (detach) {
        return 0;
      }
      AttachedSignals signals = AttachedSignals.install(cli, r.getJob().getJobId());
      cli.follow(r.getJob().getJobId(), r.getOutputOffset());
      int rc = cli.await(r.getJob().getJobId());
      signals.awaitCheckpoint();
      return rc;
    }
  }
}
