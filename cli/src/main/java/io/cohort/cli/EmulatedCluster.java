package io.cohort.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.cohort.agent.ProcessIdentity;
import io.cohort.common.CohortException;
import io.cohort.common.DaemonIdentity;
import io.cohort.common.DurableFiles;
import io.cohort.common.ProcessRunner;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.KillJobRequest;
import io.cohort.proto.v1.ListJobsRequest;
import io.cohort.proto.v1.ListNodesRequest;
import io.cohort.proto.v1.NodeInfo;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A cluster emulated on this machine: every node is a network namespace with its own agent daemon,
 * joined to the others and to the coordinator daemon by veth pairs on one bridge.
 *
 * <pre>
 *   host:  PREFIX-br  SUBNET.1/24        coordinator daemon on SUBNET.1:7070 (clients),
 *                                        SUBNET.1:7071 (agents)
 *   node i: netns PREFIX-n{i}, eth0 SUBNET.(10+i)/24, agent daemon on SUBNET.(10+i):7071,
 *                                        its overlay on 7072
 * </pre>
 *
 * Everything it creates is recorded in {@code $COHORT_HOME/cluster/cluster.json} and removed by
 * {@link #down}. Only addresses inside namespaces it made are used.
 */
final class EmulatedCluster {
  static final int COORDINATOR_PORT = 7070;

  /**
   * MTU of the emulated fabric: as large as veths and bridges take, since nothing of it leaves this
   * machine; vhost packets between nodes then go through VXLAN whole (the vhosts' MTU is the
   * fabric's minus the encapsulation, {@code DataPath}), as on a cluster with jumbo frames.
   */
  static final String FABRIC_MTU = "65535";

  static final int AGENT_PORT = 7071;

  private final Path home;
  private final PrintStream progress;

  EmulatedCluster(Path home, PrintStream progress) {
    this.home = home;
    this.progress = progress;
  }

  static Path dir(Path home) {
    return home.resolve("cluster");
  }

  /**
   * The cluster's CA and its daemons' certificates and keys (kept across `down` and `up`, so the CA
   * a client trusts stays the same).
   */
  static Path tlsDir(Path home) {
    return dir(home).resolve("tls");
  }

  /** Holds the coordinator's address while a cluster is up. */
  static Path addressFile(Path home) {
    return dir(home).resolve("coordinator.address");
  }

  private Path stateFile() {
    return dir(home).resolve("cluster.json");
  }

  /** The record of the cluster that is up. */
  static JsonObject readState(Path home) throws IOException {
    Path f = dir(home).resolve("cluster.json");
    if (!Files.exists(f)) {
      throw CohortException.precondition("no local cluster is up (`cohort cluster up`)");
    }
    return JsonParser.parseString(Files.readString(f)).getAsJsonObject();
  }

  /** The record of the daemon named {@code name} ("coordinator" or a node). */
  static JsonObject daemon(JsonObject state, String name) {
    for (var e : state.getAsJsonArray("processes")) {
      if (e.getAsJsonObject().get("name").getAsString().equals(name)) {
        return e.getAsJsonObject();
      }
    }
    throw CohortException.notFound(
        "the cluster has no daemon named %s (coordinator, n1..n%d)",
        name, state.get("nodes").getAsInt());
  }

  /**
   * The network namespace of node {@code node} ("nI"), which is also the name of its link on the
   * bridge.
   */
  static String netns(JsonObject state, String node) {
    return state.get("prefix").getAsString() + "-" + node;
  }

  void up(
      int nodes,
      String prefix,
      String subnet,
      Path launcher,
      boolean sharedImages,
      List<String> coordinatorOptions,
      List<String> agentOptions)
      throws Exception {
    if (Files.exists(stateFile())) {
      throw CohortException.precondition(
          "a local cluster is already up (%s); run `cohort " + "cluster down` first", stateFile());
    }
    if (nodes < 1 || nodes > 200) {
      throw CohortException.invalid("--nodes must be between 1 and 200, got %d", nodes);
    }
    if (!subnet.matches("\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}")) {
      throw CohortException.invalid(
          "--subnet takes the first three octets of a /24, e.g. " + "198.18.0; got '%s'", subnet);
    }
    // Never touch what another cluster (another COHORT_HOME) made: refuse names in use.
    if (linkExists(prefix + "-br")) {
      throw CohortException.precondition(
          "a bridge named %s-br already exists (another cluster "
              + "with prefix %s?); choose another --prefix and --subnet",
          prefix, prefix);
    }
    for (int i = 1; i <= nodes; i++) {
      if (Files.exists(Path.of("/run/netns", prefix + "-n" + i))) {
        throw CohortException.precondition(
            "a network namespace named %s-n%d already exists "
                + "(another cluster with prefix %s?); choose another --prefix",
            prefix, i, prefix);
      }
    }
    Path dir = dir(home);
    Files.createDirectories(dir.resolve("logs"));
    JsonObject state = new JsonObject();
    state.addProperty("prefix", prefix);
    state.addProperty("subnet", subnet);
    state.addProperty("nodes", nodes);
    JsonArray procs = new JsonArray();
    state.add("processes", procs);
    // Record first, so that `cluster down` can clean up even a half-built cluster.
    DurableFiles.writeAtomically(stateFile(), state.toString().getBytes(StandardCharsets.UTF_8));
    try {
      String bridge = prefix + "-br";
      progress.printf("cohort cluster: bridge %s %s.1/24%n", bridge, subnet);
      ip("link", "add", bridge, "type", "bridge");
      ip("addr", "add", subnet + ".1/24", "dev", bridge);
      ip("link", "set", bridge, "up");
      for (int i = 1; i <= nodes; i++) {
        String ns = prefix + "-n" + i;
        String veth = prefix + "-n" + i;
        progress.printf("cohort cluster: node n%d: netns %s, %s.%d%n", i, ns, subnet, 10 + i);
        ip("netns", "add", ns);
        // Both ends of the node's link take the fabric's MTU.
        String mtu = "mtu " + FABRIC_MTU;
        ip(
            ("link add " + veth + " " + mtu + " type veth peer eth0 " + mtu + " netns " + ns)
                .split(" "));
        ip("link", "set", veth, "master", bridge);
        ip("link", "set", veth, "up");
        ip("-n", ns, "addr", "add", subnet + "." + (10 + i) + "/24", "dev", "eth0");
        ip("-n", ns, "link", "set", "eth0", "up");
        ip("-n", ns, "link", "set", "lo", "up");
      }
      ip("link", "set", bridge, "mtu", FABRIC_MTU);
      String coordinator = subnet + ".1:" + COORDINATOR_PORT;
      String registry = subnet + ".1:" + (COORDINATOR_PORT + 1);
      Path tls = certificates(nodes, subnet);
      progress.println("cohort cluster: " + Munge.ensureDaemon(launcher));
      List<String> coordinatorCmd =
          new ArrayList<>(
              List.of(
                  "setsid",
                  launcher.toString(),
                  "coordinator",
                  "--listen",
                  coordinator,
                  "--home",
                  dir.resolve("coordinator").toString(),
                  "--tls",
                  tls.toString()));
      coordinatorCmd.addAll(coordinatorOptions);
      procs.add(start("coordinator", coordinatorCmd));
      for (int i = 1; i <= nodes; i++) {
        List<String> agent =
            new ArrayList<>(
                List.of(
                    "ip",
                    "netns",
                    "exec",
                    prefix + "-n" + i,
                    "setsid",
                    launcher.toString(),
                    "agent",
                    "--node",
                    "n" + i,
                    "--listen",
                    subnet + "." + (10 + i) + ":" + AGENT_PORT,
                    "--coordinator",
                    registry,
                    "--home",
                    dir.resolve("nodes").resolve("n" + i).toString(),
                    "--tls",
                    tls.toString()));
        if (sharedImages) {
          agent.addAll(List.of("--shared-images", dir.resolve("shared-images").toString()));
        }
        agent.addAll(agentOptions);
        procs.add(start("n" + i, agent));
        DurableFiles.writeAtomically(
            stateFile(), state.toString().getBytes(StandardCharsets.UTF_8));
      }
      DurableFiles.writeAtomically(stateFile(), state.toString().getBytes(StandardCharsets.UTF_8));
      // The CLI on this machine talks to the coordinator over its Unix socket, as whoever runs
      // it; the TCP address is the agents' (and, with MUNGE, remote users').
      String local = ClientSocket.target(ClientSocket.path(dir.resolve("coordinator")));
      awaitNodes(local, nodes);
      DurableFiles.writeAtomically(
          addressFile(home), (local + "\n").getBytes(StandardCharsets.UTF_8));
      // Every user of this machine finds the cluster through it (the socket itself is open to
      // all; the caller is whoever the kernel says).
      Files.setPosixFilePermissions(
          addressFile(home), java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
      ClientSocket.searchableByAll(addressFile(home).getParent());
      progress.printf(
          "cohort cluster: up: coordinator %s (for this machine's users: %s), nodes n1..n%d "
              + "(logs in %s)%n",
          coordinator, local, nodes, dir.resolve("logs"));
    } catch (Exception e) {
      progress.println("cohort cluster: failed, cleaning up: " + e.getMessage());
      down();
      throw e;
    }
  }

  /**
   * The cluster's CA (made once) and a certificate for the coordinator and each node, for the
   * addresses they have in this cluster; returns their directory.
   */
  private Path certificates(int nodes, String subnet) throws IOException {
    ClusterCa ca = new ClusterCa(tlsDir(home));
    if (!ca.exists()) {
      progress.printf("cohort cluster: cluster CA in %s%n", ca.dir());
      ca.init();
    } else if (ca.ensureCheckpointKey()) { // a CA kept from before there were keys
      progress.printf("cohort cluster: checkpoint key made in %s%n", ca.dir());
    }
    ca.issue(
        CoordinatorCommand.COORDINATOR_NAME,
        DaemonIdentity.Role.COORDINATOR,
        List.of(subnet + ".1"));
    for (int i = 1; i <= nodes; i++) {
      ca.issue("n" + i, DaemonIdentity.Role.AGENT, List.of(subnet + "." + (10 + i), "n" + i));
    }
    return ca.dir();
  }

  private JsonObject start(String name, List<String> cmd) throws IOException {
    Path log = dir(home).resolve("logs").resolve(name + ".log");
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .start();
    JsonObject o = new JsonObject();
    o.addProperty("name", name);
    o.addProperty("pid", p.pid());
    // The start time in clock ticks after boot, not as a date: a date is derived from the
    // wall clock, and once that was stepped `cluster down` took its own daemons for strangers
    // (a recycled pid) and left them running.
    o.addProperty(
        "start_ticks", ProcessIdentity.of(p.pid()).map(ProcessIdentity::startTicks).orElse(-1L));
    JsonArray argv = new JsonArray();
    cmd.forEach(argv::add);
    o.add("cmd", argv);
    return o;
  }

  /**
   * Stops one daemon of the cluster ("coordinator" or a node name) if it runs, and starts it again
   * with the same command line: what an operator does after a crash or an upgrade.
   */
  void restart(String name, boolean startAgain) throws Exception {
    JsonObject state = readState(home);
    JsonArray procs = state.getAsJsonArray("processes");
    JsonObject p = daemon(state, name);
    stop(name, p);
    if (startAgain) {
      List<String> cmd = new ArrayList<>();
      p.getAsJsonArray("cmd").forEach(e -> cmd.add(e.getAsString()));
      for (int i = 0; i < procs.size(); i++) {
        if (procs.get(i) == p) {
          procs.set(i, start(name, cmd));
        }
      }
      DurableFiles.writeAtomically(stateFile(), state.toString().getBytes(StandardCharsets.UTF_8));
      if (!name.equals("coordinator")) {
        awaitNodes(Files.readString(addressFile(home)).strip(), state.get("nodes").getAsInt());
      }
      progress.printf("cohort cluster: %s started again%n", name);
    }
  }

  private void awaitNodes(String coordinator, int nodes) throws InterruptedException {
    ManagedChannel ch = Cli.channel(coordinator);
    try {
      CohortGrpc.CohortBlockingStub stub = CohortGrpc.newBlockingStub(ch);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
      long up = -1;
      String lastError = "none";
      while (System.nanoTime() < deadline) {
        try {
          List<NodeInfo> all =
              stub.withDeadlineAfter(2, TimeUnit.SECONDS)
                  .listNodes(ListNodesRequest.getDefaultInstance())
                  .getNodesList();
          long alive = all.stream().filter(NodeInfo::getAlive).count();
          if (alive != up) {
            progress.printf("cohort cluster: %d of %d agents registered%n", alive, nodes);
            up = alive;
          }
          if (alive == nodes) {
            return;
          }
        } catch (StatusRuntimeException notYet) {
          // the coordinator is still starting
          lastError = notYet.getStatus().toString();
        }
        Thread.sleep(250);
      }
      throw new CohortException(
          CohortException.Kind.DEADLINE_EXCEEDED,
          "the cluster's agents did not all register within 90 s (the coordinator at "
              + coordinator
              + " last answered: "
              + (up < 0 ? lastError : up + " of " + nodes + " registered")
              + "); see "
              + dir(home).resolve("logs"));
    } finally {
      ch.shutdownNow();
    }
  }

  /** Ends the cluster's jobs and daemons and removes its namespaces and bridge. */
  void down() throws Exception {
    if (!Files.exists(stateFile())) {
      progress.println("cohort cluster: no local cluster is up");
      return;
    }
    JsonObject state = JsonParser.parseString(Files.readString(stateFile())).getAsJsonObject();
    killJobs();
    for (var e : state.getAsJsonArray("processes")) {
      JsonObject p = e.getAsJsonObject();
      stop(p.get("name").getAsString(), p);
    }
    String prefix = state.get("prefix").getAsString();
    int nodes = state.get("nodes").getAsInt();
    NodeFaults faults = new NodeFaults(home, progress);
    for (int i = 1; i <= nodes; i++) {
      // Vhosts the coordinator could not end (their node killed or cut off) and anything else
      // left in the node's namespace: while one runs there, deleting the namespace's name does
      // not free it, and the node's link would outlive the bridge.
      for (ProcessIdentity p : faults.endProcesses(state, "n" + i)) {
        p.awaitExit(10_000);
      }
      ipQuiet("netns", "del", prefix + "-n" + i);
    }
    ipQuiet("link", "del", prefix + "-br");
    Files.deleteIfExists(addressFile(home));
    Files.deleteIfExists(stateFile());
    progress.println(
        "cohort cluster: down (the catalog in " + dir(home).resolve("coordinator") + " is kept)");
  }

  /** Kills the running jobs of the cluster, so no vhost outlives it. */
  private void killJobs() {
    Path address = addressFile(home);
    if (!Files.exists(address)) {
      return;
    }
    ManagedChannel ch = null;
    try {
      ch = Cli.channel(Files.readString(address).strip());
      CohortGrpc.CohortBlockingStub stub = CohortGrpc.newBlockingStub(ch);
      for (JobInfo j :
          stub.withDeadlineAfter(10, TimeUnit.SECONDS)
              .listJobs(ListJobsRequest.getDefaultInstance())
              .getJobsList()) {
        if (j.getState() == JobState.JOB_STATE_RUNNING) {
          progress.printf("cohort cluster: killing job %s%n", j.getJobId());
          try {
            stub.withDeadlineAfter(30, TimeUnit.SECONDS)
                .killJob(KillJobRequest.newBuilder().setJobId(j.getJobId()).build());
          } catch (StatusRuntimeException e) {
            // One job's node may be dead: the others are still to be killed, and the
            // vhosts left are ended node by node below.
            progress.printf(
                "cohort cluster: cannot kill job %s (%s)%n",
                j.getJobId(), e.getStatus().getDescription());
          }
        }
      }
    } catch (IOException | RuntimeException e) {
      progress.println(
          "cohort cluster: cannot list the cluster's jobs ("
              + e.getMessage()
              + "); their vhosts may still run");
    } finally {
      if (ch != null) {
        ch.shutdownNow();
      }
    }
  }

  private void stop(String name, JsonObject p) throws InterruptedException {
    long pid = p.get("pid").getAsLong();
    var handle = ProcessHandle.of(pid).filter(h -> isOurs(h, p));
    if (handle.isEmpty()) {
      return; // already gone (or the pid was reused: not ours)
    }
    handle.get().destroy();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (handle.get().isAlive() && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    if (handle.get().isAlive()) {
      handle.get().destroyForcibly();
    }
    progress.printf("cohort cluster: stopped %s (pid %d)%n", name, pid);
  }

  /** Whether the live process {@code h} is the daemon recorded as {@code p}. */
  private static boolean isOurs(ProcessHandle h, JsonObject p) {
    if (p.has("start_ticks")) {
      return new ProcessIdentity(h.pid(), p.get("start_ticks").getAsLong()).isAlive();
    }
    // A cluster brought up by an earlier version recorded the start as a date.
    return p.has("start")
        && h.info()
            .startInstant()
            .map(Object::toString)
            .orElse("")
            .equals(p.get("start").getAsString());
  }

  private static void ip(String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of("ip"));
    cmd.addAll(List.of(args));
    ProcessRunner.check("emulated cluster", cmd.toArray(String[]::new));
  }

  private static boolean linkExists(String name) throws IOException, InterruptedException {
    return ProcessRunner.run("ip", "link", "show", name).ok();
  }

  private static void ipQuiet(String... args) {
    try {
      ip(args);
    } catch (IOException | RuntimeException | InterruptedException ignored) {
      // already gone
    }
  }
}
