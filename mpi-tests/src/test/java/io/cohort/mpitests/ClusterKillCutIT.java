package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The emulated cluster's node faults: `cluster cut/join NODE` take a node off the network and back
 * (its processes untouched), `cluster kill NODE --wipe-images` kills it as a machine dies, and
 * `cluster down` then leaves nothing of it behind.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterKillCutIT {
  private static final String PREFIX = "cohortnk";
  private static CohortHarness cohort;

  @BeforeAll
  static void up() throws Exception {
    cohort = new CohortHarness("killcut");
    cohort.clusterUp(2, PREFIX, "198.18.82");
  }

  @AfterAll
  static void down() throws Exception {
    cohort.closeCluster();
  }

  @Test
  @Order(1)
  void aNodeCutOffIsDownUntilItJoinsAgain() throws Exception {
    long agent = daemonPid("n2");
    String said = cohort.cohort("cluster", "cut", "n2").ok().err();
    assertTrue(said.contains("n2 cut off the network (link " + PREFIX + "-n2 down)"), said);
    awaitAlive("n2", false);
    assertTrue(alive("n1"), "the other node stays up");
    assertTrue(ProcessHandle.of(agent).map(ProcessHandle::isAlive).orElse(false), "n2 runs on");

    said = cohort.cohort("cluster", "join", "n2").ok().err();
    assertTrue(said.contains("n2 joined the network again"), said);
    awaitAlive("n2", true);
  }

  @Test
  @Order(2)
  void aKilledNodeLosesEveryProcessAndItsImagesAndDownLeavesNothing() throws Exception {
    String[] command = CohortHarness.cRing(2, 100_000, 20); // runs until killed
    String job =
        cohort
            .cohort(
                Stream.concat(
                        Stream.of("run", "--detach", "--json", "--nodes", "n2", "--"),
                        Stream.of(command))
                    .toArray(String[]::new))
            .ok()
            .json()
            .get("job")
            .getAsString();
    CohortHarness.awaitFile(cohort.clusterLog("n2", job), "iter 20 ", Duration.ofSeconds(90));
    cohort.checkpoint(job, false);
    Path node = cohort.home.resolve("cluster/nodes/n2");
    Path images = node.resolve("images");
    assertTrue(hasImages(images), "the checkpoint's image is on n2");

    JsonObject rec =
        JsonParser.parseString(Files.readString(node.resolve("vhosts/" + job + "-0/record.json")))
            .getAsJsonObject();
    long init = rec.get("pid").getAsLong();
    List<ProcessHandle> vhost = inPidNamespaceOf(init);
    assertTrue(vhost.size() >= 3, "the vhost runs its init, mpirun and ranks: " + vhost.size());
    long agent = daemonPid("n2");

    String said = cohort.cohort("cluster", "kill", "n2", "--wipe-images").ok().err();
    assertTrue(said.contains("n2: killed its agent daemon (pid " + agent + ")"), said);
    assertTrue(said.contains("n2: killed vhost " + job + "-0"), said);
    assertTrue(said.contains("n2: deleted its image store"), said);
    for (ProcessHandle p : vhost) {
      awaitGone(p); // the kernel kills the rest of a pid namespace once its init dies
    }
    ProcessHandle.of(agent).ifPresent(ClusterKillCutIT::awaitGoneUnchecked);
    assertFalse(Files.exists(images), images + " is gone");
    awaitAlive("n2", false);

    cohort.cohort(Duration.ofMinutes(2), "cluster", "down").ok();
    assertFalse(Files.exists(Path.of("/run/netns", PREFIX + "-n1")));
    assertFalse(Files.exists(Path.of("/run/netns", PREFIX + "-n2")));
    String links = run("ip", "-o", "link", "show");
    assertFalse(links.contains(PREFIX), "links left:\n" + links);
    String mounts = Files.readString(Path.of("/proc/self/mountinfo"));
    assertFalse(mounts.contains(cohort.home.toString()), "mounts left:\n" + mounts);
    assertFalse(mounts.contains(PREFIX), "mounts left:\n" + mounts);
  }

  private static void awaitGoneUnchecked(ProcessHandle p) {
    try {
      awaitGone(p);
    } catch (InterruptedException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Waits until {@code p} is gone or a zombie (nothing runs in it any more; who reaps it depends on
   * the machine's init).
   */
  private static void awaitGone(ProcessHandle p) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (p.isAlive() && !zombie(p.pid())) {
      if (System.nanoTime() > deadline) {
        fail("a process of the node survived: " + p.pid() + " " + p.info());
      }
      Thread.sleep(50);
    }
  }

  private static boolean zombie(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      char state = stat.charAt(stat.lastIndexOf(')') + 2);
      return state == 'Z' || state == 'X';
    } catch (IOException gone) {
      return true;
    }
  }

  private static boolean hasImages(Path images) throws IOException {
    if (!Files.isDirectory(images)) {
      return false;
    }
    try (Stream<Path> s = Files.list(images)) {
      return s.anyMatch(p -> !p.getFileName().toString().startsWith("."));
    }
  }

  /** Every process in the pid namespace whose init is {@code init}. */
  private static List<ProcessHandle> inPidNamespaceOf(long init) throws IOException {
    Path ns = Files.readSymbolicLink(Path.of("/proc/" + init + "/ns/pid"));
    assertNotEquals(Files.readSymbolicLink(Path.of("/proc/self/ns/pid")), ns, "a pid namespace");
    List<ProcessHandle> found = new ArrayList<>();
    ProcessHandle.allProcesses()
        .forEach(
            p -> {
              try {
                if (Files.readSymbolicLink(Path.of("/proc/" + p.pid() + "/ns/pid")).equals(ns)) {
                  found.add(p);
                }
              } catch (IOException gone) {
                // exited meanwhile
              }
            });
    return found;
  }

  private static long daemonPid(String name) throws IOException {
    JsonObject state =
        JsonParser.parseString(Files.readString(cohort.home.resolve("cluster/cluster.json")))
            .getAsJsonObject();
    for (JsonElement e : state.getAsJsonArray("processes")) {
      if (e.getAsJsonObject().get("name").getAsString().equals(name)) {
        return e.getAsJsonObject().get("pid").getAsLong();
      }
    }
    return fail("no daemon " + name + " in cluster.json");
  }

  private static boolean alive(String node) {
    for (JsonElement e :
        JsonParser.parseString(cohort.cohort("nodes", "--json").ok().out()).getAsJsonArray()) {
      JsonObject o = e.getAsJsonObject();
      if (o.get("node").getAsString().equals(node)) {
        return o.has("alive") && o.get("alive").getAsBoolean();
      }
    }
    return false;
  }

  /** Waits until the coordinator shows {@code node} up or down (it calls a node down after 3 s). */
  private static void awaitAlive(String node, boolean up) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (alive(node) != up) {
      if (System.nanoTime() > deadline) {
        fail(node + " is not " + (up ? "up" : "down") + " after 60 s");
      }
      Thread.sleep(250);
    }
  }

  private static String run(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertEquals(0, p.waitFor(), String.join(" ", cmd) + ": " + out);
    return out;
  }
}
