package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Jobs of several vhosts on a 3-node emulated cluster: the user's plain `mpirun` spans every vhost
 * (Cohort's hostfile and cohort-rsh), ranks talk over TCP between vhosts (through the TUN + Netty
 * overlay when the vhosts are on different nodes) and shared memory inside one, the barrier
 * checkpoints all vhosts as one cut, and the job restarts on a different pair of nodes and, from
 * the same checkpoint, with both vhosts on one node; jobs cannot reach each other's vhosts.
 */
class MultiVhostIT {
  private static CohortHarness cohort;

  @BeforeAll
  static void up() throws Exception {
    cohort = new CohortHarness("multivhost");
    cohort.clusterUp(3, "cohortmv", "198.18.78");
  }

  @AfterAll
  static void down() throws Exception {
    cohort.closeCluster();
  }

  private static String run(String... args) {
    List<String> all = new ArrayList<>(List.of("run", "--detach", "--json"));
    all.addAll(List.of(args));
    return cohort.cohort(all.toArray(String[]::new)).ok().json().get("job").getAsString();
  }

  private static long bytes(Path dir) throws Exception {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    }
  }

  /**
   * Runs on n1+n2; checkpoint (continue, then stop); restart on n2+n3; then from the same
   * checkpoint with both vhosts on n3, asked as {@code onN3} (the set "n3", or the mapping
   * "n3,n3").
   */
  private void checkpointAndRestartAcrossNodes(String[] mpirun, String onN3, String... runOptions)
      throws Exception {
    String expected = ReferenceRuns.reference(mpirun);
    List<String> args = new ArrayList<>(List.of("--nodes", "n1,n2"));
    args.addAll(List.of(runOptions));
    args.add("--");
    args.addAll(List.of(mpirun));
    String job = run(args.toArray(String[]::new));
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));

    String first = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    assertEquals("JOB_STATE_RUNNING", cohort.state(job));
    // Both vhosts were dumped, and the second one (on n2) holds ranks: its image is far
    // larger than an idle vhost's (well under 1 MB).
    assertTrue(
        bytes(cohort.home.resolve("cluster/nodes/n2/images/" + first + "/" + job + "-1"))
            > 4_000_000,
        "ranks ran in the second vhost, on n2");

    String stop = cohort.checkpoint(job, true).get("checkpoint").getAsString();
    assertEquals("JOB_STATE_STOPPED", cohort.state(job));
    assertTrue(
        !Files.readString(cohort.clusterLog("n1", job)).contains("result"), "stopped mid-run");

    cohort.cohort("restart", stop, "--nodes", "n2,n3", "--detach").ok();
    assertEquals(List.of("n2", "n3"), nodes(job));
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job), "restarted on a different pair of nodes");

    String said = cohort.cohort("restart", stop, "--nodes", onN3, "--detach").ok().err();
    assertEquals(List.of("n3", "n3"), nodes(job));
    assertTrue(said.contains("vhosts " + job + "-0 on n3, " + job + "-1 on n3"), said);
    assertEquals(0, cohort.await(job));
    assertEquals(expected, cohort.log(job), "restarted with both vhosts on one node");
  }

  private static List<String> nodes(String job) {
    List<String> out = new ArrayList<>();
    cohort
        .job(job)
        .getAsJsonArray("vhosts")
        .forEach(v -> out.add(v.getAsJsonObject().get("node").getAsString()));
    return out;
  }

  @Test
  void cMpiJobAcrossNodes() throws Exception {
    // 4 ranks, 2 slots per vhost: shared memory inside each vhost, TCP between them.
    checkpointAndRestartAcrossNodes(CohortHarness.cRing(4, 600, 20), "n3,n3", "--slots", "2");
  }

  @Test
  void javaMpiJobAcrossNodes() throws Exception {
    checkpointAndRestartAcrossNodes(CohortHarness.javaRing(2, 600, 20), "n3", "--slots", "1");
  }

  /**
   * `--vhosts 2 --nodes n1,n2,n3`: the two vhosts go to two different nodes of the set, and the
   * third node is reported unused (stderr and --json); the job runs across them.
   */
  @Test
  void aJobOnMoreNodesThanVhostsLeavesOneUnusedAndSaysSo() {
    CohortHarness.Result r =
        cohort
            .cohort(
                "run",
                "--detach",
                "--json",
                "--vhosts",
                "2",
                "--nodes",
                "n1,n2,n3",
                "--",
                "bash",
                "-c",
                "cat /etc/hostname")
            .ok();
    String job = r.json().get("job").getAsString();
    List<String> used = nodes(job);
    assertEquals(2, used.size());
    assertNotEquals(used.get(0), used.get(1), "one vhost on each of two nodes: " + used);
    List<String> unused = new ArrayList<>(List.of("n1", "n2", "n3"));
    unused.removeAll(used);
    assertEquals(
        unused.toString(),
        r.json().getAsJsonArray("unused_nodes").asList().stream()
            .map(e -> e.getAsString())
            .toList()
            .toString());
    assertEquals(
        used.get(1),
        r.json().getAsJsonArray("vhosts").get(1).getAsJsonObject().get("node").getAsString());
    assertTrue(r.err().contains("node " + unused.get(0) + " left unused"), r.err());
    assertEquals(0, cohort.await(job));
  }

  /**
   * On the kernel path (the default) no agent forwards a job's traffic, so its ranks are left to
   * poll as Open MPI likes, across nodes as on one vhost (on the user-space path they would be told
   * to yield the cores to the agents).
   */
  @Test
  void ranksAreLeftToPollOnTheKernelPath() throws Exception {
    String show = "echo yield=${OMPI_MCA_mpi_yield_when_idle:-unset}";
    String across = run("--nodes", "n1,n2", "--", "bash", "-c", show);
    String single = run("--nodes", "n1", "--", "bash", "-c", show);
    assertEquals(0, cohort.await(across));
    assertEquals(0, cohort.await(single));
    assertTrue(cohort.log(across).contains("yield=unset"), cohort.log(across));
    assertTrue(cohort.log(single).contains("yield=unset"), cohort.log(single));
  }

  @Test
  void jobsCannotReachEachOthersVhosts() throws Exception {
    assertIsolated("n1,n1");
  }

  @Test
  void jobsOnTheSameNodesCannotReachEachOther() throws Exception {
    assertIsolated("n1,n2"); // the same across nodes, through the overlay
  }

  /**
   * Two jobs with vhosts on {@code nodes}, whose ids differ by 256 (they once shared a subnet and
   * the second wiped the first's routes): a probe in the first vhost of the second job reaches the
   * spawn port of its own second vhost, and not that of the other job; the other job, checking
   * after the probe started, still reaches its own.
   */
  private static void assertIsolated(String nodes) throws Exception {
    String reachOwn =
        "own=$(sed -n 2p \"$OMPI_MCA_orte_default_hostfile\" | cut -d' ' -f1);"
            + " try() { timeout 3 bash -c \"exec 3<>/dev/tcp/$1/7207\" 2>/dev/null"
            + " && echo \"$2 reached\" || echo \"$2 blocked\"; };"
            + " try $own own;";
    String other = run("--nodes", nodes, "--", "bash", "-c", "sleep 25; " + reachOwn);
    // As if 255 more jobs had run since: the next one's id is 256 after the other's.
    Files.writeString(
        cohort.home.resolve("cluster/coordinator/next-job-id"),
        (Long.parseLong(other) + 256) + "\n");
    // The coordinator plans each job's addresses (JobNetworks): ask it for the other job's.
    String otherAddress =
        cohort
            .job(other)
            .getAsJsonArray("vhosts")
            .get(1)
            .getAsJsonObject()
            .get("address")
            .getAsString();
    String probe =
        run("--nodes", nodes, "--", "bash", "-c", reachOwn + " try " + otherAddress + " other");
    assertEquals(Long.parseLong(other) + 256, Long.parseLong(probe));
    assertEquals(0, cohort.await(probe));
    String out = cohort.log(probe);
    assertTrue(out.contains("own reached"), "a job reaches its own vhosts: " + out);
    assertTrue(out.contains("other blocked"), "but not another job's: " + out);
    assertEquals(0, cohort.await(other));
    assertTrue(
        cohort.log(other).contains("own reached"),
        "the first job keeps its network while the second runs: " + cohort.log(other));
  }

  /**
   * Files a job across nodes writes roll back with the checkpoint when it restarts on other nodes:
   * checkpoint while it runs, let it run on, kill it, restart on n2+n3; every file ends as an
   * uninterrupted run leaves it.
   */
  @Test
  void filesTheJobWritesRollBackWhenItRestartsOnOtherNodes() throws Exception {
    Path base = Files.createDirectories(cohort.home.resolve("writer"));
    Path ref = Files.createDirectories(base.resolve("reference"));
    Path dir = Files.createDirectories(base.resolve("run"));
    String w = FilesRollbackIT.WRITER.toString();
    ReferenceRuns.reference(
        "mpirun", "-np", "2", "--map-by", "node", w, ref.toString(), "300", "0");
    String job =
        run(
            "--nodes",
            "n1,n2",
            "--",
            "mpirun",
            "-np",
            "2",
            "--map-by",
            "node",
            w,
            dir.toString(),
            "300",
            "40");
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "step 20\n", Duration.ofSeconds(90));
    String ckpt = cohort.checkpoint(job, false).get("checkpoint").getAsString();
    CohortHarness.awaitFile(cohort.clusterLog("n1", job), "step 60\n", Duration.ofSeconds(90));
    cohort.cohort("kill", job).ok();
    cohort.cohort("restart", ckpt, "--nodes", "n2,n3", "--detach").ok();
    assertEquals(List.of("n2", "n3"), nodes(job));
    assertEquals(0, cohort.await(job));
    FilesRollbackIT.assertSameFiles(ref, dir);
  }
}
