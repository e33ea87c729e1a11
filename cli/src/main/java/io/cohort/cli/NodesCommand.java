package io.cohort.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonParser;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.ListNodesRequest;
import io.cohort.proto.v1.NodeInfo;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "nodes",
    mixinStandardHelpOptions = true,
    description =
        "List the nodes the coordinator knows: up or down, running vhosts, free " + "image space.")
final class NodesCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Option(names = "--json", description = "print a JSON array of nodes")
  boolean json;

  @Override
  public Integer call() {
    try (Cli cli = new Cli(connection)) {
      List<NodeInfo> nodes =
          cli.call(30).listNodes(ListNodesRequest.getDefaultInstance()).getNodesList();
      if (json) {
        JsonArray a = new JsonArray();
        nodes.forEach(n -> a.add(JsonParser.parseString(ProtoJson.print(n))));
        cli.out.println(Cli.gson().toJson(a));
        return 0;
      }
      cli.out.printf(
          "%-8s %-6s %-22s %7s %10s %s%n", "NODE", "STATE", "ADDRESS", "VHOSTS", "FREE", "CRIU");
      for (NodeInfo n : nodes) {
        cli.out.printf(
            "%-8s %-6s %-22s %7d %9.1fG %s%n",
            n.getNode(),
            n.getAlive() ? "up" : "down",
            n.getAddress().isEmpty() ? "-" : n.getAddress(),
            n.getRunningVhosts(),
            n.getImageStoreFreeBytes() / 1e9,
            n.getCriuVersion().isEmpty() ? "-" : n.getCriuVersion());
      }
      return 0;
    }
  }
}
