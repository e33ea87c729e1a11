package io.cohort.bench;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Part 10: what authentication costs, side by side in one run. The same measurements on a build of
 * Cohort from before it had any (plaintext gRPC, every caller root: {@code --baseline}) and on this
 * one (mutual TLS between daemons, the client socket's peer credentials, MUNGE and TLS on the TCP
 * client port, checkpoint records and manifests signed): the total of a coordinated checkpoint at 1
 * and 4 vhosts, and the wall time of a whole `cohort ps` process on the coordinator's machine and
 * through its TCP port; on this build, also the checkpoints of the same jobs run by an unprivileged
 * account (created for the part and removed after it).
 *
 * <p>Both builds' clusters are up at once and the measurements alternate one by one (a checkpoint
 * of each job in turn, a `ps` of each build in turn): on this 2-core machine the checkpoint times
 * drift by more than the difference sought, and taking turns cluster by cluster let that drift land
 * on one build (+7 ms at 4 vhosts in one run, +114 ms in the next).
 */
final class SecurityCost {
  private static final int ROUNDS = 3;

  /**
   * `ps` calls per build and round: a `ps` takes 0.2 s, and with 10 a round (30 a run) the medians'
   * difference moved by more than the target's margin from one run to the next.
   */
  private static final int PS_CALLS = 30;

  private static final int WARMUP = 2;

  /**
   * Jobs started per kind of turn, layout and round, each checkpointed {@code reps / JOB_SETS}
   * times: one job's checkpoints vary less than two jobs' (in run 10, before's two kinds of turns,
   * the same root job on the same build, had 4-vhost medians of 1028 and 931 ms), so a row needs
   * more jobs, not only more checkpoints.
   */
  private static final int JOB_SETS = 2;

  private static final String ACCOUNT = "cohortbench";
  private static final List<List<String>> LAYOUTS =
      List.of(List.of("n1"), List.of("n1", "n2", "n3", "n4"));

  private final Path repo;
  private final Path baseline;
  private final Path home;
  private final int reps;
  private final Path ring;

  SecurityCost(Path repo, Path baseline, Path home, int reps, Path ring) {
    this.repo = repo;
    this.baseline = baseline;
    this.home = home;
    this.reps = reps;
    this.ring = ring;
  }

  /** Both builds' figures, and what this one adds. */
  @SuppressWarnings("try") // the clusters are up for the block
  JsonObject run() throws IOException, InterruptedException {
    if (!Files.isExecutable(baseline.resolve("cohort"))
        || !Files.exists(baseline.resolve("cli/target/cohort.jar"))) {
      throw new IllegalStateException(
          "part 10 needs a built checkout of Cohort from before authentication: --baseline "
              + baseline
              + " has no cohort script or cli/target/cohort.jar (see docs/benchmarks/README.md)");
    }
    Side before = new Side("before", baseline, "cohortsb", "198.18.94");
    Side after = new Side("after", repo, "cohortsa", "198.18.97");
    try (BenchAccount user = BenchAccount.create(ACCOUNT)) {
      for (int round = 1; round <= ROUNDS; round++) {
        System.out.printf("bench: security, round %d: both builds' clusters up%n", round);
        try (Cluster b = before.up();
            Cluster a = after.up()) {
          for (List<String> nodes : LAYOUTS) {
            // Before, every job was root's; after, a user's job too: only a non-root owner's
            // checkpoint has the set-id check at the prepare and the images' credentials read at
            // the seal. One job on each cluster at a time, so that both builds' daemons carry the
            // same load: root's job against root's, then root's against a user's.
            int n = nodes.size();
            for (int set = 0; set < JOB_SETS; set++) {
              alternate(
                  List.of(
                      new Turn(before, before.cli(), before.root(n)),
                      new Turn(after, after.cli(), after.root(n))),
                  nodes);
              // Before's root job beside after's user's goes into before's "user" figures: each
              // row compares turns taken together.
              alternate(
                  List.of(
                      new Turn(before, before.cli(), before.user(n)),
                      new Turn(after, after.cli().as(user.uid, user.gid), after.user(n))),
                  nodes);
            }
          }
          for (int i = 0; i < PS_CALLS; i++) {
            // Each build goes first every other time: neither always follows the other.
            for (Side side : i % 2 == 0 ? List.of(before, after) : List.of(after, before)) {
              side.localPs.add(timed(side.cli(), "ps", "--json"));
              side.tcpPs.add(timed(side.cli(), "ps", "--json", "--coordinator", side.tcp()));
            }
          }
        }
        for (Side side : List.of(before, after)) {
          System.out.printf("  %s: %s%n", side.name, side.summary());
        }
      }
    }
    JsonObject out = new JsonObject();
    out.addProperty("date", Instant.now().toString());
    out.addProperty("baseline", baseline.toString());
    out.addProperty("baseline_commit", commit(baseline));
    out.addProperty("commit", commit(repo));
    out.addProperty(
        "design",
        "both clusters up at once, one job on each at a time, measurements alternating one by one");
    out.add("before", before.json());
    out.add("after", after.json());
    return out;
  }

  /** A job to checkpoint in turn with the others: whose cluster, as whom, into which figures. */
  private record Turn(Side side, Cli cli, Stats[] into) {}

  /**
   * Starts each turn's job on {@code nodes}, then checkpoints them in turn, {@code reps / JOB_SETS}
   * each.
   */
  private void alternate(List<Turn> turns, List<String> nodes) {
    System.out.printf("bench: coordinated checkpoints in turn, %d vhost(s)%n", nodes.size());
    List<String> jobs = new ArrayList<>();
    List<BarrierCost> barriers = new ArrayList<>();
    try {
      for (Turn t : turns) {
        BarrierCost b = new BarrierCost(t.cli(), reps, ring);
        barriers.add(b);
        jobs.add(b.startRing(nodes));
      }
      int n = turns.size();
      // Unmeasured first: a fresh cluster's first checkpoints are slower (the daemons' code not
      // yet compiled), and they would land on whichever turns come first.
      for (int i = 0; i < WARMUP; i++) {
        for (int j = 0; j < n; j++) {
          barriers.get(j).checkpointOnce(jobs.get(j));
        }
      }
      for (int i = 0; i < Math.max(reps / JOB_SETS, 5); i++) {
        // The order turns by one each time: no job always follows the same other.
        for (int k = 0; k < n; k++) {
          int j = (i + k) % n;
          JsonObject t = barriers.get(j).checkpointOnce(jobs.get(j));
          turns.get(j).into()[0].add(CheckpointCost.num(t, "total_ms"));
          turns.get(j).into()[1].add(CheckpointCost.num(t, "criu_ms"));
        }
      }
    } finally {
      // Each job is ended even if another's kill fails (the round's `cluster down` ends any left).
      for (int j = 0; j < jobs.size(); j++) {
        try {
          turns.get(j).cli().cohort("kill", jobs.get(j));
        } catch (RuntimeException e) {
          System.err.printf("bench: could not kill job %s: %s%n", jobs.get(j), e.getMessage());
        }
      }
    }
  }

  /** One build: its cluster of each round, and its measurements gathered over the rounds. */
  private final class Side {
    final String name;
    final Path checkout;
    final String prefix;
    final String subnet;
    final Path sideHome;

    /** Total and CRIU of root's jobs at 1 and 4 vhosts, in the turns of root's against root's. */
    final Stats[][] root = {{new Stats(), new Stats()}, {new Stats(), new Stats()}};

    /**
     * The same, in the turns of root's against a user's: after, the account's job; before, root's
     * job that took turns with it.
     */
    final Stats[][] user = {{new Stats(), new Stats()}, {new Stats(), new Stats()}};

    final Stats localPs = new Stats();
    final Stats tcpPs = new Stats();
    private Cli cli;

    Side(String name, Path checkout, String prefix, String subnet) {
      this.name = name;
      this.checkout = checkout;
      this.prefix = prefix;
      this.subnet = subnet;
      this.sideHome = home.resolve(name);
    }

    /** A fresh cluster of 4 nodes of this build, its nodes up. */
    Cluster up() throws IOException, InterruptedException {
      DurableTree.delete(sideHome);
      Files.createDirectories(sideHome);
      Map<String, String> env = new HashMap<>();
      env.put("COHORT_NATIVE_DIR", checkout.resolve("native/build").toString());
      cli = new Cli(checkout, sideHome, env);
      Cluster c = Cluster.up(cli, 4, prefix, subnet);
      try {
        c.awaitNodesUp(4, java.time.Duration.ofMinutes(1));
      } catch (InterruptedException | RuntimeException e) {
        c.close();
        throw e;
      }
      return c;
    }

    Cli cli() {
      return cli;
    }

    Stats[] root(int vhosts) {
      return root[vhosts == 1 ? 0 : 1];
    }

    Stats[] user(int vhosts) {
      return user[vhosts == 1 ? 0 : 1];
    }

    String tcp() throws IOException {
      return tcpAddress(sideHome);
    }

    String summary() {
      return String.format(
          "checkpoint 1 vhost %s ms, 4 vhosts %s ms%s; ps %s ms, over TCP %s ms",
          root[0][0].cell(),
          root[1][0].cell(),
          user[0][0].n() == 0
              ? ""
              : String.format(
                  " (beside a user's job: %s ms, %s ms)", user[0][0].cell(), user[1][0].cell()),
          localPs.cell(),
          tcpPs.cell());
    }

    JsonObject json() {
      JsonObject o = new JsonObject();
      o.add("checkpoint_1_vhost_ms", root[0][0].json());
      o.add("checkpoint_4_vhosts_ms", root[1][0].json());
      // CRIU's own time, which authentication does not touch: its spread is most of the totals'.
      o.add("criu_1_vhost_ms", root[0][1].json());
      o.add("criu_4_vhosts_ms", root[1][1].json());
      o.add("user_checkpoint_1_vhost_ms", user[0][0].json());
      o.add("user_checkpoint_4_vhosts_ms", user[1][0].json());
      o.add("user_criu_1_vhost_ms", user[0][1].json());
      o.add("user_criu_4_vhosts_ms", user[1][1].json());
      o.add("ps_local_ms", localPs.json());
      o.add("ps_tcp_ms", tcpPs.json());
      return o;
    }
  }

  /** Wall time of a whole `cohort ARGS` process, as a user waits for it. */
  private static double timed(Cli cli, String... args) {
    long t0 = System.nanoTime();
    cli.cohort(args);
    return (System.nanoTime() - t0) / 1e6;
  }

  /** The coordinator's TCP client address ("--listen" of its command line in cluster.json). */
  private static String tcpAddress(Path home) throws IOException {
    for (JsonElement p :
        JsonParser.parseString(Files.readString(home.resolve("cluster/cluster.json")))
            .getAsJsonObject()
            .getAsJsonArray("processes")) {
      JsonObject o = p.getAsJsonObject();
      if (o.get("name").getAsString().equals("coordinator")) {
        List<String> cmd = new ArrayList<>();
        o.getAsJsonArray("cmd").forEach(e -> cmd.add(e.getAsString()));
        return cmd.get(cmd.indexOf("--listen") + 1);
      }
    }
    throw new IllegalStateException("no coordinator in " + home.resolve("cluster/cluster.json"));
  }

  private static String commit(Path checkout) {
    try {
      Process p =
          new ProcessBuilder("git", "-C", checkout.toString(), "rev-parse", "--short", "HEAD")
              .redirectErrorStream(true)
              .start();
      String out = new String(p.getInputStream().readAllBytes()).strip();
      return p.waitFor() == 0 ? out : "unknown";
    } catch (IOException e) {
      return "unknown";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "unknown";
    }
  }
}
