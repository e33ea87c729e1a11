package io.cohort.cli;

import com.google.gson.JsonObject;
import io.cohort.agent.ProcessIdentity;
import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.ProcessRunner;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.VhostRecord;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * What may happen to a node of the emulated cluster as to a machine: it dies ({@link #kill}: its
 * agent daemon and every process of it killed at once, its image store lost if asked), or it is cut
 * off the network and joins it again ({@link #cut}, {@link #join}: its link on the bridge down or
 * up, its processes untouched).
 *
 * <p>A node's processes are its agent daemon (recorded in {@code cluster.json}), its vhosts (the
 * init of each, recorded by the agent in {@code nodes/NODE/vhosts/VHOST/record.json}: a vhost is a
 * pid namespace, and SIGKILL to its init kills every process in it) and whatever else runs in the
 * node's network namespace (the agent's helpers, such as a CRIU in progress). Each is named by its
 * pid and start time: a recycled pid is never taken for one of them.
 */
final class NodeFaults {
  private static final long EXIT_WAIT_MILLIS = 10_000;

  private final Path home;
  private final PrintStream progress;

  NodeFaults(Path home, PrintStream progress) {
    this.home = home;
    this.progress = progress;
  }

  /**
   * Kills {@code node} as a machine dies: its agent daemon first (so it sees nothing of the rest),
   * then its vhosts and any other process in its network namespace, all with SIGKILL; with {@code
   * wipeImages} its image store is deleted too. Its namespace and link stay, so that `cluster start
   * NODE` brings the node back, and `cluster down` removes them.
   */
  void kill(String node, boolean wipeImages) throws IOException, InterruptedException {
    JsonObject state = EmulatedCluster.readState(home);
    JsonObject daemon = EmulatedCluster.daemon(state, node);
    if (node.equals("coordinator")) {
      throw CohortException.invalid(
          "`cluster kill` takes a node (n1..n%d); stop the coordinator with `cohort cluster stop "
              + "coordinator`",
          state.get("nodes").getAsInt());
    }
    if (wipeImages && daemon.getAsJsonArray("cmd").toString().contains("\"--shared-images\"")) {
      throw CohortException.precondition(
          "the cluster's nodes share one image directory (`cluster up --shared-images`): wiping it"
              + " would lose every node's images, not only %s's; kill %s without --wipe-images",
          node, node);
    }
    List<ProcessIdentity> killed = new ArrayList<>();
    identity(daemon)
        .ifPresent(
            agent -> {
              if (agent.kill()) {
                killed.add(agent);
                progress.printf(
                    "cohort cluster: %s: killed its agent daemon (pid %d)%n", node, agent.pid());
              }
            });
    killed.addAll(endProcesses(state, node));
    for (ProcessIdentity p : killed) {
      if (!p.awaitExit(EXIT_WAIT_MILLIS)) {
        progress.printf("cohort cluster: %s: pid %d has not exited yet%n", node, p.pid());
      }
    }
    if (killed.isEmpty()) {
      progress.printf("cohort cluster: %s: nothing of it was running%n", node);
    }
    if (wipeImages) {
      Path images = nodeHome(node).resolve("images");
      DurableFiles.deleteTree(images);
      progress.printf("cohort cluster: %s: deleted its image store %s%n", node, images);
    }
  }

  /** Sets {@code node}'s link on the cluster's bridge down: the node is cut off the network. */
  void cut(String node) throws IOException, InterruptedException {
    setLink(node, "down");
    progress.printf(
        "cohort cluster: %s cut off the network (link %s down); its processes run on%n",
        node, link(EmulatedCluster.readState(home), node));
  }

  /** Sets {@code node}'s link on the cluster's bridge up again. */
  void join(String node) throws IOException, InterruptedException {
    setLink(node, "up");
    progress.printf(
        "cohort cluster: %s joined the network again (link %s up)%n",
        node, link(EmulatedCluster.readState(home), node));
  }

  /**
   * SIGKILLs the vhosts of {@code node} that still run and every process left in its network
   * namespace (the agent daemon included, if it still runs); returns those signalled.
   */
  List<ProcessIdentity> endProcesses(JsonObject state, String node) throws IOException {
    List<ProcessIdentity> killed = new ArrayList<>();
    Path vhosts = nodeHome(node).resolve("vhosts");
    if (Files.isDirectory(vhosts)) {
      try (Stream<Path> dirs = Files.list(vhosts)) {
        for (Path record : dirs.map(d -> d.resolve("record.json")).filter(Files::exists).toList()) {
          VhostRecord rec;
          try {
            rec = ProtoJson.read(record, VhostRecord.newBuilder()).build();
          } catch (RuntimeException e) {
            progress.printf(
                "cohort cluster: %s: cannot read %s: %s%n", node, record, e.getMessage());
            continue;
          }
          ProcessIdentity init = new ProcessIdentity(rec.getPid(), rec.getPidStartTicks());
          if (init.kill()) {
            killed.add(init);
            progress.printf(
                "cohort cluster: %s: killed vhost %s (its init, pid %d, and with it every process"
                    + " of the vhost)%n",
                node, rec.getVhostId(), init.pid());
          }
        }
      }
    }
    String ns = inodeLink(Path.of("/run/netns", EmulatedCluster.netns(state, node)));
    if (ns != null) {
      for (ProcessIdentity p : inNetns(ns)) {
        if (p.kill()) {
          killed.add(p);
          progress.printf(
              "cohort cluster: %s: killed pid %d (%s) in its network namespace%n",
              node, p.pid(), command(p.pid()));
        }
      }
    }
    return killed;
  }

  private Path nodeHome(String node) {
    return EmulatedCluster.dir(home).resolve("nodes").resolve(node);
  }

  private void setLink(String node, String upOrDown) throws IOException, InterruptedException {
    JsonObject state = EmulatedCluster.readState(home);
    EmulatedCluster.daemon(state, node);
    if (node.equals("coordinator")) {
      throw CohortException.invalid(
          "the coordinator has no link of its own (it is on the bridge); name a node, n1..n%d",
          state.get("nodes").getAsInt());
    }
    ProcessRunner.check("emulated cluster", "ip", "link", "set", link(state, node), upOrDown);
  }

  /** The host side of {@code node}'s veth on the bridge. */
  private static String link(JsonObject state, String node) {
    return EmulatedCluster.netns(state, node);
  }

  private static Optional<ProcessIdentity> identity(JsonObject daemon) {
    if (!daemon.has("start_ticks")) {
      return Optional.empty(); // recorded by an older version: cannot be told from a stranger
    }
    ProcessIdentity p =
        new ProcessIdentity(daemon.get("pid").getAsLong(), daemon.get("start_ticks").getAsLong());
    return p.isAlive() ? Optional.of(p) : Optional.empty();
  }

  /** What a namespace file links to ("net:[INODE]"), as /proc/PID/ns/net does; null if none. */
  private static String inodeLink(Path nsFile) {
    try {
      return "net:[" + Files.getAttribute(nsFile, "unix:ino") + "]";
    } catch (IOException | UnsupportedOperationException e) {
      return null;
    }
  }

  /** The live processes whose network namespace is {@code ns}. */
  private static List<ProcessIdentity> inNetns(String ns) throws IOException {
    List<ProcessIdentity> found = new ArrayList<>();
    try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
      for (Path p : procs.toList()) {
        String name = p.getFileName().toString();
        if (!name.chars().allMatch(Character::isDigit)) {
          continue;
        }
        try {
          if (Files.readSymbolicLink(p.resolve("ns/net")).toString().equals(ns)) {
            ProcessIdentity.of(Long.parseLong(name)).ifPresent(found::add);
          }
        } catch (IOException gone) {
          // exited meanwhile, or a kernel thread
        }
      }
    }
    return found;
  }

  private static String command(long pid) {
    return ProcessHandle.of(pid).flatMap(h -> h.info().command()).orElse("?");
  }
}
