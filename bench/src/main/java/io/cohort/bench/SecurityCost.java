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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Part 10: what authentication costs, side by side in one run. The same measurements on a build of
 * Cohort from before it had any (plaintext gRPC, every caller root: {@code --baseline}) and on this
 * one (mutual TLS between daemons, the client socket's peer credentials, MUNGE and TLS on the TCP
 * client port, checkpoint records and manifests signed): the total of a coordinated checkpoint at 1
 * and 4 vhosts, and the wall time of a whole `cohort ps` process on the coordinator's machine and
 * through its TCP port; on this build, also the checkpoints of the same jobs run by an unprivileged
 * account (created for the part and removed after it). The two builds take turns, cluster by
 * cluster, so that a drift of the machine lands on both.
 */
final class SecurityCost {
  private static final String PREFIX = "cohortsec";
  private static final String SUBNET = "198.18.94";
  private static final int ROUNDS = 3;
  private static final int PS_CALLS = 10;
  private static final String ACCOUNT = "cohortbench";

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
  JsonObject run() throws IOException, InterruptedException {
    if (!Files.isExecutable(baseline.resolve("cohort"))
        || !Files.exists(baseline.resolve("cli/target/cohort.jar"))) {
      throw new IllegalStateException(
          "part 10 needs a built checkout of Cohort from before authentication: --baseline "
              + baseline
              + " has no cohort script or cli/target/cohort.jar (see docs/benchmarks/README.md)");
    }
    Map<String, Side> sides = new LinkedHashMap<>();
    sides.put("before", new Side(baseline, null));
    try (BenchAccount user = BenchAccount.create(ACCOUNT)) {
      // After, a user's job too: only a non-root owner's checkpoint has the set-id check at the
      // prepare and the images' credentials read at the seal. Before, every job was root's.
      sides.put("after", new Side(repo, user));
      for (int round = 1; round <= ROUNDS; round++) {
        for (Map.Entry<String, Side> e : sides.entrySet()) {
          System.out.printf("bench: security, round %d, %s%n", round, e.getKey());
          e.getValue().measure(home.resolve(e.getKey()));
        }
      }
    }
    JsonObject out = new JsonObject();
    out.addProperty("date", Instant.now().toString());
    out.addProperty("baseline", baseline.toString());
    out.addProperty("baseline_commit", commit(baseline));
    out.addProperty("commit", commit(repo));
    for (Map.Entry<String, Side> e : sides.entrySet()) {
      out.add(e.getKey(), e.getValue().json());
    }
    return out;
  }

  /** One build's measurements, gathered over the rounds. */
  private final class Side {
    final Path checkout;
    final BenchAccount user;
    final Stats checkpoint1 = new Stats();
    final Stats checkpoint4 = new Stats();
    final Stats criu1 = new Stats();
    final Stats criu4 = new Stats();
    final Stats userCheckpoint1 = new Stats();
    final Stats userCheckpoint4 = new Stats();
    final Stats userCriu1 = new Stats();
    final Stats userCriu4 = new Stats();
    final Stats localPs = new Stats();
    final Stats tcpPs = new Stats();

    /** A build's side; {@code user} also checkpoints that account's jobs (null: root's only). */
    Side(Path checkout, BenchAccount user) {
      this.checkout = checkout;
      this.user = user;
    }

    void measure(Path sideHome) throws IOException, InterruptedException {
      DurableTree.delete(sideHome);
      Files.createDirectories(sideHome);
      Map<String, String> env = new HashMap<>();
      env.put("COHORT_NATIVE_DIR", checkout.resolve("native/build").toString());
      Cli cli = new Cli(checkout, sideHome, env);
      try (Cluster cluster = Cluster.up(cli, 4, PREFIX, SUBNET)) {
        cluster.awaitNodesUp(4, java.time.Duration.ofMinutes(1));
        BarrierCost barrier = new BarrierCost(cli, reps, ring);
        barrier.measure(List.of("n1"), checkpoint1, criu1);
        barrier.measure(List.of("n1", "n2", "n3", "n4"), checkpoint4, criu4);
        if (user != null) {
          BarrierCost theirs = new BarrierCost(cli.as(user.uid, user.gid), reps, ring);
          theirs.measure(List.of("n1"), userCheckpoint1, userCriu1);
          theirs.measure(List.of("n1", "n2", "n3", "n4"), userCheckpoint4, userCriu4);
        }
        String tcp = tcpAddress(sideHome);
        for (int i = 0; i < PS_CALLS; i++) {
          localPs.add(timed(cli, "ps", "--json"));
          tcpPs.add(timed(cli, "ps", "--json", "--coordinator", tcp));
        }
        System.out.printf(
            "  checkpoint 1 vhost %s ms, 4 vhosts %s ms; ps %s ms, over TCP %s ms%n",
            checkpoint1.cell(), checkpoint4.cell(), localPs.cell(), tcpPs.cell());
      }
    }

    JsonObject json() {
      JsonObject o = new JsonObject();
      o.add("checkpoint_1_vhost_ms", checkpoint1.json());
      o.add("checkpoint_4_vhosts_ms", checkpoint4.json());
      // CRIU's own time, which authentication does not touch: its spread is most of the totals'.
      o.add("criu_1_vhost_ms", criu1.json());
      o.add("criu_4_vhosts_ms", criu4.json());
      if (user != null) {
        o.add("user_checkpoint_1_vhost_ms", userCheckpoint1.json());
        o.add("user_checkpoint_4_vhosts_ms", userCheckpoint4.json());
        o.add("user_criu_1_vhost_ms", userCriu1.json());
        o.add("user_criu_4_vhosts_ms", userCriu4.json());
      }
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
