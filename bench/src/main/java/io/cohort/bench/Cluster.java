package io.cohort.bench;

import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;

/**
 * The emulated cluster the benchmarks run on (`cohort cluster up`): real coordinator and agent
 * daemons, warm JVMs as in production, each node in its own network namespace.
 */
final class Cluster implements AutoCloseable {
  static final String PREFIX = "cohortbench";
  static final String SUBNET = "198.18.95";
  final Cli cli;

  private Cluster(Cli cli) {
    this.cli = cli;
  }

  static Cluster up(Cli cli, int nodes) {
    cli.exec(
        java.util.List.of(cli.repo.resolve("cohort").toString(), "cluster", "down"),
        java.time.Duration.ofMinutes(2)); // a cluster of an interrupted run
    cli.cohort(
        "cluster",
        "up",
        "--nodes",
        Integer.toString(nodes),
        "--prefix",
        PREFIX,
        "--subnet",
        SUBNET);
    return new Cluster(cli);
  }

  String namespace(String node) {
    return PREFIX + "-" + node;
  }

  /** A node's address on the fabric ("n1" is SUBNET.11, as `cohort cluster up` numbers them). */
  String address(String node) {
    return SUBNET + "." + (10 + Integer.parseInt(node.substring(1)));
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

  @Override
  public void close() {
    cli.cohort("cluster", "down");
  }
}
