package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A node lost with its disk, or only cut off, on the emulated cluster without a shared image
 * directory: partner copies keep every checkpoint, a node declared dead never blocks the restart,
 * and a node that comes back ends its stale vhosts before it takes work. Partner copies are limited
 * to 4 MB/s here (`cluster up --copy-rate`), as a site leaving its fabric to the jobs would: a copy
 * takes seconds, which lets a node die before one has finished.
 */
class NodeLossIT {
  private static CohortHarness cohort;

  @BeforeAll
  static void up() throws Exception {
    cohort = new CohortHarness("nodeloss");
    cohort
        .cohort(
            Duration.ofMinutes(3),
            "cluster",
            "up",
            "--nodes",
            "3",
            "--prefix",
            "cohortnl",
            "--subnet",
            "198.18.83",
            "--copy-rate",
            "4M")
        .ok();
  }

  @AfterAll
  static void down() throws Exception {
    cohort.closeCluster();
  }

  /** A ring over n1 and n2 (one vhost each), long enough to outlive what the test does to it. */
  private static String[] ring() {
    return CohortHarness.cRing(4, 1100, 20);
  }

  private static String runOnN1N2(String[] command, String... options) {
    List<String> args = new ArrayList<>(List.of("run", "--detach", "--json", "--nodes", "n1,n2"));
    args.addAll(List.of(options));
    args.add("--");
    args.addAll(List.of(command));
    return cohort.cohort(args.toArray(String[]::new)).ok().json().get("job").getAsString();
  }

  private static JsonObject checkpointInfo(String ckpt) {
    String job = ckpt.substring(0, ckpt.indexOf('.'));
    for (JsonElement e : cohort.checkpoints(job)) {
      if (e.getAsJsonObject().get("checkpoint_id").getAsString().equals(ckpt)) {
        return e.getAsJsonObject();
      }
    }
    throw new AssertionError("checkpoint " + ckpt + " not listed");
  }

  private static void awaitProtection(String ckpt, String protection) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
    String now = "";
    while (System.nanoTime() < deadline) {
      JsonObject c = checkpointInfo(ckpt);
      now = c.has("protection") ? c.get("protection").getAsString() : "";
      if (now.equals(protection)) {
        return;
      }
      Thread.sleep(250);
    }
    throw new AssertionError(ckpt + " did not reach " + protection + " (still " + now + ")");
  }

  private static String nodeState(String node) {
    for (JsonElement e :
        JsonParser.parseString(cohort.cohort("nodes", "--json").ok().out()).getAsJsonArray()) {
      JsonObject o = e.getAsJsonObject();
      if (o.get("node").getAsString().equals(node)) {
        return o.has("state") ? o.get("state").getAsString() : "";
      }
    }
    return "";
  }

  private static void awaitNodeState(String node, String state) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
    while (!nodeState(node).equals(state)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(node + " did not become " + state + ": " + nodeState(node));
      }
      Thread.sleep(250);
    }
  }

  /** The host pid of a vhost's init on an emulated node, from its agent's record. */
  private static ProcessHandle vhostInit(String node, String vhost) throws Exception {
    Path record =
        cohort.home.resolve("cluster/nodes/" + node + "/vhosts/" + vhost + "/record.json");
    JsonObject r = JsonParser.parseString(Files.readString(record)).getAsJsonObject();
    return ProcessHandle.of(r.get("pid").getAsLong()).orElseThrow();
  }

  private static void awaitGone(ProcessHandle p, String what) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (p.isAlive() && System.nanoTime() < deadline) {
      Thread.sleep(250);
    }
    assertFalse(p.isAlive(), what);
  }

  private static List<String> nodes(String job) {
    List<String> out = new ArrayList<>();
    cohort
        .job(job)
        .getAsJsonArray("vhosts")
        .forEach(v -> out.add(v.getAsJsonObject().get("node").getAsString()));
    return out;
  }

  /**
   * n2 dies with its disk; until it is declared dead the restart says how to declare it; then the
   * job restarts on n1, n3 from n2's partner copy and its output is that of an uninterrupted run.
   * When n2 comes back it first ends its stale vhost; the new incarnation is not disturbed.
   */
  @Test
  void aNodeThatDiesWithItsDiskLosesNoCheckpoint() throws Exception {
    String[] command = ring();
    String expected = ReferenceRuns.reference(command);
    String job = runOnN1N2(command);
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));
    String ckpt = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    awaitProtection(ckpt, "PROTECTION_PARTNER_COMPLETE");
    String listed = cohort.cohort("checkpoints", job).ok().out();
    assertTrue(listed.contains("PROTECTION") && listed.contains(" partner "), listed);

    cohort.cohort("cluster", "kill", "n2", "--wipe-images").ok();
    assertFalse(
        Files.exists(cohort.home.resolve("cluster/nodes/n2/images/" + ckpt)), "n2's disk is gone");
    awaitNodeState("n2", "NODE_STATE_DOWN");
    CohortHarness.Result early = cohort.cohort("restart", job, "--replace", "--nodes", "n1,n3");
    assertNotEquals(0, early.rc());
    assertTrue(early.err().contains("cohort nodes fence n2"), early.err());

    cohort.cohort("nodes", "fence", "n2").ok();
    assertEquals("NODE_STATE_DEAD", nodeState("n2"));
    JsonObject restart =
        cohort
            .cohort("restart", job, "--replace", "--nodes", "n1,n3", "--detach", "--json")
            .ok()
            .json();
    assertEquals(ckpt, restart.get("checkpoint").getAsString());
    assertEquals(List.of("n1", "n3"), nodes(job));
    String sources = restart.get("image_sources").toString();
    assertTrue(sources.contains("partner copy on n3"), sources);

    cohort.cohort("cluster", "start", "n2").ok(); // comes back (empty image store)
    awaitNodeState("n2", "NODE_STATE_UP");
    assertTrue(
        Files.readString(cohort.home.resolve("cluster/logs/coordinator.log"))
            .contains("vhost " + job + "-1 on n2 ended"),
        "the stale vhost is ended when n2 is back");
    assertEquals(0, cohort.await(job));
    ReferenceRuns.assertSameOutput(
        expected, cohort.log(job), "job " + job + " restarted on n1, n3 from n2's partner copy");

    // `rm` removes every copy: the original on n1 and the partner copy on n3.
    Path images = cohort.home.resolve("cluster/nodes");
    assertTrue(Files.isDirectory(images.resolve("n3/images/" + ckpt + "/" + job + "-1")));
    cohort.cohort("rm", ckpt).ok();
    for (String n : List.of("n1", "n3")) {
      assertFalse(Files.exists(images.resolve(n + "/images/" + ckpt)), "removed on " + n);
    }
  }

  /**
   * n2 only cut off, its vhost still running: declared dead, the job restarts on n1, n3; when the
   * link comes back the old vhost is ended, and it never disturbed the new incarnation (its packets
   * carry the old incarnation's network key).
   */
  @Test
  void aNodeCutOffAndDeclaredDeadEndsItsOldVhostsWhenItComesBack() throws Exception {
    String[] command = ring();
    String expected = ReferenceRuns.reference(command);
    String job = runOnN1N2(command);
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));
    String ckpt = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    awaitProtection(ckpt, "PROTECTION_PARTNER_COMPLETE");
    ProcessHandle old = vhostInit("n2", job + "-1");

    cohort.cohort("cluster", "cut", "n2").ok();
    try {
      awaitNodeState("n2", "NODE_STATE_DOWN");
      cohort.cohort("nodes", "fence", "n2").ok();
      cohort.cohort("restart", ckpt, "--replace", "--nodes", "n1,n3", "--detach").ok();
      assertEquals(List.of("n1", "n3"), nodes(job));
      assertTrue(old.isAlive(), "the cut-off vhost still runs");
    } finally {
      cohort.cohort("cluster", "join", "n2").ok();
    }
    awaitNodeState("n2", "NODE_STATE_UP");
    awaitGone(old, "the old vhost on n2 is ended when n2 is back");
    assertEquals(0, cohort.await(job));
    ReferenceRuns.assertSameOutput(
        expected, cohort.log(job), "job " + job + " restarted on n1, n3 while n2 was cut off");
  }

  /**
   * n2 dies right after a checkpoint, before that checkpoint's partner copy of n2's image is made:
   * the restart of the job uses the newest checkpoint whose images are all available, and says so.
   */
  @Test
  void aCheckpointWhosePartnerCopyDidNotFinishGivesWayToTheNewestProtectedOne() throws Exception {
    String[] command = ring();
    String expected = ReferenceRuns.reference(command);
    String job = runOnN1N2(command);
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));
    String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    awaitProtection(first, "PROTECTION_PARTNER_COMPLETE");
    String second = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    cohort.cohort("cluster", "kill", "n2", "--wipe-images").ok();
    assertNotEquals(
        "PROTECTION_PARTNER_COMPLETE", checkpointInfo(second).get("protection").getAsString());
    awaitNodeState("n2", "NODE_STATE_DOWN");
    cohort.cohort("nodes", "fence", "n2").ok();

    CohortHarness.Result r =
        cohort.cohort("restart", job, "--replace", "--nodes", "n1,n3", "--detach", "--json").ok();
    assertEquals(first, r.json().get("checkpoint").getAsString());
    String note = r.json().get("note").getAsString();
    assertTrue(
        note.contains(second) && note.contains("n2") && note.contains("restarting from " + first),
        note);
    cohort.cohort("cluster", "start", "n2").ok();
    awaitNodeState("n2", "NODE_STATE_UP");
    assertEquals(0, cohort.await(job));
    // The copy of the second checkpoint's image from n1 may still have been on its way to another
    // node at the restart, and land after it: it must leave the job's logs to the restored job.
    ReferenceRuns.assertSameOutput(
        expected,
        cohort.log(job),
        String.format(
            "job %s restarted from %s on n1, n3 (n2 lost right after %s, whose image of n1 was "
                + "still being copied)",
            job, first, second));
  }

  /**
   * `kill` with a node down (not declared dead): the job is killed, a warning says what is left,
   * and the vhost there is ended when the node is back. (The job runs with `--images none`: its
   * checkpoint is local only.)
   */
  @Test
  void killWithANodeDownSucceedsAndEndsTheRestWhenItIsBack() throws Exception {
    String job = runOnN1N2(ring(), "--images", "none");
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));
    // A job that asked for no partner copies gets none.
    String ckpt = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    JsonObject local = checkpointInfo(ckpt);
    assertEquals("PROTECTION_LOCAL_ONLY", local.get("protection").getAsString());
    assertEquals("image policy none", local.get("protection_detail").getAsString());
    assertFalse(local.has("copies"), local.toString());
    ProcessHandle onN2 = vhostInit("n2", job + "-1");
    cohort.cohort("cluster", "cut", "n2").ok();
    try {
      awaitNodeState("n2", "NODE_STATE_DOWN");
      CohortHarness.Result kill = cohort.cohort("kill", job).ok();
      assertTrue(kill.err().contains("job " + job + " killed"), kill.err());
      assertTrue(
          kill.err().contains("vhost " + job + "-1 on node n2")
              && kill.err().contains("ended when n2 is back"),
          kill.err());
      assertEquals("JOB_STATE_KILLED", cohort.state(job));
      assertTrue(onN2.isAlive(), "n2 is cut off: its vhost still runs");
    } finally {
      cohort.cohort("cluster", "join", "n2").ok();
    }
    awaitNodeState("n2", "NODE_STATE_UP");
    awaitGone(onN2, "the vhost on n2 is ended when n2 is back");
  }
}
