package io.cohort.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonParser;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.ListCheckpointsRequest;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "checkpoints",
    mixinStandardHelpOptions = true,
    description =
        "List committed checkpoints (all, or one job's): size, freeze time, "
            + "which node holds each vhost's image, and its protection from a node's loss: "
            + "partner (every image also on another node), copying (partner copies under way), "
            + "local (only where written: image policy none, no other node, or a copy failed; "
            + "--json says why), shared (in an image directory the nodes share).")
final class CheckpointsCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneId.systemDefault());

  @Parameters(paramLabel = "JOB", arity = "0..1", description = "only this job's checkpoints")
  String job = "";

  @Option(names = "--json", description = "print a JSON array of checkpoints")
  boolean json;

  @Override
  public Integer call() {
    try (Cli cli = new Cli(connection, CohortGrpc.getListCheckpointsMethod())) {
      List<CheckpointInfo> all =
          cli.call(60)
              .listCheckpoints(ListCheckpointsRequest.newBuilder().setJobId(job).build())
              .getCheckpointsList();
      if (json) {
        JsonArray a = new JsonArray();
        all.forEach(c -> a.add(JsonParser.parseString(ProtoJson.print(c))));
        cli.out.println(Cli.gson().toJson(a));
        return 0;
      }
      cli.out.printf(
          "%-10s %-6s %-19s %9s %8s %9s %-6s %-10s %s%n",
          "CHECKPOINT",
          "JOB",
          "CREATED",
          "SIZE",
          "FROZEN",
          "IN-FLIGHT",
          "STOP",
          "PROTECTION",
          "VHOSTS");
      for (CheckpointInfo c : all) {
        cli.out.printf(
            "%-10s %-6s %-19s %8.1fM %6dms %9d %-6s %-10s %s%n",
            c.getCheckpointId(),
            c.getJobId(),
            TIME.format(Instant.ofEpochMilli(c.getCreatedUnixMs())),
            c.getImageBytes() / 1e6,
            c.getTimings().getFreezeMs(),
            c.getInflightPackets(),
            c.getStoppedJob() ? "yes" : "no",
            protection(c),
            c.getVhostsList().stream().map(PsCommand::placement).collect(Collectors.joining(",")));
      }
      return 0;
    }
  }

  /** The protection column: one word (the JSON has the detail). */
  static String protection(CheckpointInfo c) {
    return switch (c.getProtection()) {
      case PROTECTION_PARTNER_COMPLETE -> "partner";
      case PROTECTION_PARTNER_COPYING -> "copying";
      case PROTECTION_LOCAL_ONLY -> "local";
      case PROTECTION_SHARED_STORE -> "shared";
      default -> "-";
    };
  }
}
