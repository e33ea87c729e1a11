package io.cohort.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonParser;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.ListJobsRequest;
import io.cohort.proto.v1.VhostPlacement;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "ps",
    mixinStandardHelpOptions = true,
    description = {
      "List jobs: state, incarnation, where each vhost runs, latest checkpoint.",
      "A vhost on a node that cannot be reached now (down, or not registered since the "
          + "coordinator started) is shown as VHOST@NODE(unknown), and a running job whose first "
          + "vhost is there as unknown: its last known state is in --json (`state`, with "
          + "`unreachable_nodes`)."
    })
final class PsCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Option(names = "--json", description = "print a JSON array of jobs")
  boolean json;

  @Override
  public Integer call() {
    try (Cli cli = new Cli(connection, CohortGrpc.getListJobsMethod())) {
      List<JobInfo> jobs =
          cli.call(60).listJobs(ListJobsRequest.getDefaultInstance()).getJobsList();
      if (json) {
        JsonArray a = new JsonArray();
        jobs.forEach(j -> a.add(JsonParser.parseString(ProtoJson.print(j))));
        cli.out.println(Cli.gson().toJson(a));
        return 0;
      }
      cli.out.printf(
          "%-6s %-12s %-10s %-5s %-22s %-10s %s%n",
          "JOB", "NAME", "STATE", "INC", "VHOSTS", "LATEST", "COMMAND");
      for (JobInfo j : jobs) {
        String vhosts =
            j.getVhostsList().stream()
                .map(
                    v ->
                        placement(v)
                            + (j.getUnreachableNodesList().contains(v.getNode())
                                ? "(unknown)"
                                : ""))
                .collect(Collectors.joining(","));
        boolean headUnknown =
            j.getVhostsCount() > 0
                && j.getUnreachableNodesList().contains(j.getVhosts(0).getNode());
        cli.out.printf(
            "%-6s %-12s %-10s %-5d %-22s %-10s %s%n",
            j.getJobId(),
            j.getSpec().getName().isEmpty() ? "-" : j.getSpec().getName(),
            headUnknown ? "unknown" : Cli.state(j),
            j.getIncarnation(),
            vhosts,
            j.getLatestCheckpoint().isEmpty() ? "-" : j.getLatestCheckpoint(),
            String.join(" ", j.getSpec().getCommandList()));
      }
      return 0;
    }
  }

  static String placement(VhostPlacement v) {
    return v.getVhostId() + "@" + v.getNode();
  }
}
