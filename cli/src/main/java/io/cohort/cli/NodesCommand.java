package io.cohort.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonParser;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.FenceNodeRequest;
import io.cohort.proto.v1.FenceNodeResponse;
import io.cohort.proto.v1.ListNodesRequest;
import io.cohort.proto.v1.NodeInfo;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "nodes",
    mixinStandardHelpOptions = true,
    description = {
      "List the nodes the coordinator knows: their state, running vhosts, free image space.",
      "States: up; down (not heard for 3 s, or not since the coordinator started: it may come "
          + "back); dead (declared dead with "
          + "`cohort nodes fence`, or down longer than the coordinator's --dead-after); "
          + "rejoining (a dead node heard again: its stale vhosts are being ended before it "
          + "takes work)."
    },
    subcommands = NodesCommand.Fence.class)
final class NodesCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Option(names = "--json", description = "print a JSON array of nodes")
  boolean json;

  @Override
  public Integer call() {
    try (Cli cli = new Cli(connection, CohortGrpc.getListNodesMethod())) {
      List<NodeInfo> nodes =
          cli.call(30).listNodes(ListNodesRequest.getDefaultInstance()).getNodesList();
      if (json) {
        JsonArray a = new JsonArray();
        nodes.forEach(n -> a.add(JsonParser.parseString(ProtoJson.print(n))));
        cli.out.println(Cli.gson().toJson(a));
        return 0;
      }
      cli.out.printf(
          "%-8s %-9s %-22s %7s %10s %s%n", "NODE", "STATE", "ADDRESS", "VHOSTS", "FREE", "CRIU");
      for (NodeInfo n : nodes) {
        cli.out.printf(
            "%-8s %-9s %-22s %7d %9.1fG %s%n",
            n.getNode(),
            state(n),
            n.getAddress().isEmpty() ? "-" : n.getAddress(),
            n.getRunningVhosts(),
            n.getImageStoreFreeBytes() / 1e9,
            n.getCriuVersion().isEmpty() ? "-" : n.getCriuVersion());
      }
      return 0;
    }
  }

  static String state(NodeInfo n) {
    return switch (n.getState()) {
      case NODE_STATE_DEAD -> "dead";
      case NODE_STATE_REJOINING -> "rejoining";
      case NODE_STATE_DOWN -> "down";
      case NODE_STATE_UP -> "up";
      default -> n.getAlive() ? "up" : "down";
    };
  }

  @Command(
      name = "fence",
      mixinStandardHelpOptions = true,
      description = {
        "Declare a node that is down dead. Its vhosts then count as gone: `cohort kill` and "
            + "`cohort restart --replace --nodes ...` of its jobs go ahead, and nothing new is "
            + "placed on it.",
        "If it comes back (it was only cut off, or rebooted), its agent is told to end the "
            + "vhosts it still runs of those jobs before it takes work again. A node that is up "
            + "cannot be declared dead."
      })
  static final class Fence implements Callable<Integer> {
    @Mixin ConnectionOptions connection = new ConnectionOptions();

    @Parameters(paramLabel = "NODE", description = "the node's name (see `cohort nodes`)")
    String node;

    @Override
    public Integer call() {
      try (Cli cli = Cli.forChange(connection, CohortGrpc.getFenceNodeMethod())) {
        FenceNodeResponse r =
            cli.call(30).fenceNode(FenceNodeRequest.newBuilder().setNode(node).build());
        cli.err.printf("cohort: node %s declared dead%n", node);
        if (r.getStaleVhostsCount() > 0) {
          cli.err.printf(
              "cohort: its vhosts %s are ended if it comes back; restart their jobs elsewhere "
                  + "(`cohort restart JOB --replace --nodes ...`) or kill them%n",
              String.join(", ", r.getStaleVhostsList()));
        }
        return 0;
      }
    }
  }
}
