package io.cohort.bench;

import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The emulated cluster the benchmarks run on (`cohort cluster up`): real coordinator and agent
 * daemons, warm JVMs as in production, each node in its own network namespace.
 */
final class Cluster implements AutoCloseable {
  static final String PREFIX = "cohortbench";
  static final String SUBNET = "198.18.95";
  final Cli cli;
  private final String prefix;
  private final String subnet;

  private Cluster(Cli cli, String prefix, String subnet) {
    this.cli = cli;
    this.prefix = prefix;
    this.subnet = subnet;
  }

  /** The benchmarks' cluster of {@code nodes} nodes, on the cluster's defaults. */
  static Cluster up(Cli cli, int nodes) {
    return up(cli, nodes, PREFIX, SUBNET);
  }

  /**
   * A cluster of {@code nodes} nodes with its own prefix and subnet (a part that needs other daemon
   * options or environment starts its own, in its own home), and more options of `cluster up`.
   */
  static Cluster up(Cli cli, int nodes, String prefix, String subnet, String... options) {
    cli.exec(
        List.of(cli.repo.resolve("cohort").toString(), "cluster", "down"),
        Duration.ofMinutes(2)); // a cluster of an interrupted run
    List<String> args = new ArrayList<>(List.of("cluster", "up", "--nodes", nodes + ""));
    args.addAll(List.of("--prefix", prefix, "--subnet", subnet));
    args.addAll(List.of(options));
    cli.cohort(args.toArray(String[]::new));
    return new Cluster(cli, prefix, subnet);
  }

  String namespace(String node) {
    return prefix + "-" + node;
  }

  /** A node's address on the fabric ("n1" is SUBNET.11, as `cohort cluster up` numbers them). */
  String address(String node) {
    return subnet + "." + (10 + Integer.parseInt(node.substring(1)));
  }

  /** The pid of a daemon of the cluster ("coordinator", "n1", ...). */
  long pid(String name) {
    try {
      for (JsonElement e :
          JsonParser.parseString(Files.readString(cli.home.resolve("cluster/cluster.json")))
              .getAsJsonObject()
              .getAsJsonArray("processes")) {
        if (e.getAsJsonObject().get("name").getAsString().equals(name)) {
          return e.getAsJsonObject().get("pid").getAsLong();
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    throw new IllegalStateException("no daemon " + name + " in the cluster");
  }

  /** Waits until {@code n} nodes of the cluster are alive (`cohort nodes`). */
  void awaitNodesUp(int n, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    String seen = "no answer";
    while (System.nanoTime() < deadline) {
      Cli.Result r =
          cli.exec(List.of(cli.repo.resolve("cohort").toString(), "nodes", "--json"), timeout);
      if (r.rc() == 0) {
        int up = 0;
        for (JsonElement e : JsonParser.parseString(r.out()).getAsJsonArray()) {
          JsonElement alive = e.getAsJsonObject().get("alive");
          up += alive != null && alive.getAsBoolean() ? 1 : 0;
        }
        if (up == n) {
          return;
        }
        seen = up + " alive";
      } else {
        seen = r.err().strip();
      }
      Thread.sleep(200);
    }
    throw new IllegalStateException(
        "the cluster's " + n + " nodes are not all up after " + timeout + " (" + seen + ")");
  }

  @Override
  public void close() {
    cli.cohort("cluster", "down");
  }
}
