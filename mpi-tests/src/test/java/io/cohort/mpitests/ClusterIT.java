package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The daemons over real sockets on an emulated cluster (network namespaces joined by a bridge):
 * registration and liveness, placement on a chosen node, checkpoint and restart of a real MPI job
 * there and, from the same checkpoint, on other nodes (image streamed between agents and verified),
 * clear errors for unknown and dead nodes, and a clean `cluster down`.
 */
class ClusterIT {
  private static final String PREFIX = "cohortit";

  private static boolean exists(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    p.getInputStream().readAllBytes();
    return p.waitFor() == 0;
  }

  private static JsonObject node(CohortHarness cohort, String name) {
    for (JsonElement e :
        JsonParser.parseString(cohort.cohort("nodes", "--json").ok().out()).getAsJsonArray()) {
      if (e.getAsJsonObject().get("node").getAsString().equals(name)) {
        return e.getAsJsonObject();
      }
    }
    throw new AssertionError("node " + name + " not listed");
  }

  @Test
  void jobsRunAndRestartOnAChosenNodeOfTheEmulatedCluster() throws Exception {
    String[] command = CohortHarness.cRing(3, 600, 20);
    String expected = ReferenceRuns.reference(command);
    try (CohortHarness cohort = new CohortHarness("cluster")) {
      try {
        cohort
            .cohort(
                Duration.ofMinutes(3),
                "cluster",
                "up",
                "--nodes",
                "3",
                "--prefix",
                PREFIX,
                "--subnet",
                "198.18.77")
            .ok();
        for (String n : new String[] {"n1", "n2", "n3"}) {
          assertTrue(alive(cohort, n), n + " must be up");
        }
        // Another cluster (another Cohort home) with the same names is refused, and does not
        // touch this one.
        try (CohortHarness second = new CohortHarness("cluster-clash")) {
          CohortHarness.Result clash =
              second.cohort(
                  "cluster", "up", "--nodes", "1", "--prefix", PREFIX, "--subnet", "198.18.76");
          assertNotEquals(0, clash.rc());
          assertTrue(clash.err().contains("already exists"), clash.err());
        }
        assertTrue(
            alive(cohort, "n1") && exists("ip", "link", "show", PREFIX + "-br"),
            "the first cluster is untouched");

        String job =
            cohort
                .cohort(
                    concat(
                        new String[] {"run", "--detach", "--json", "--nodes", "n2", "--"}, command))
                .ok()
                .json()
                .get("job")
                .getAsString();
        assertEquals(
            "n2",
            cohort
                .job(job)
                .getAsJsonArray("vhosts")
                .get(0)
                .getAsJsonObject()
                .get("node")
                .getAsString());
        assertTrue(
            Files.exists(cohort.home.resolve("cluster/nodes/n2/vhosts/" + job + "-0")),
            "the vhost belongs to n2's agent");
        CohortHarness.awaitFile(cohort.clusterLog("n2", job), "iter 40 ", Duration.ofSeconds(60));
        cohort.checkpoint(job, false);
        assertEquals("JOB_STATE_RUNNING", cohort.state(job));
        String ckpt = cohort.checkpoint(job, true).get("checkpoint").getAsString();
        assertEquals("JOB_STATE_STOPPED", cohort.state(job));
        cohort.cohort("restart", ckpt, "--detach").ok();
        assertEquals(0, cohort.await(job));
        assertEquals(expected, cohort.log(job));

        // The same checkpoint on other nodes: the image is streamed there and verified.
        for (String other : new String[] {"n3", "n1"}) {
          cohort.cohort("restart", ckpt, "--nodes", other, "--detach").ok();
          assertEquals(
              other,
              cohort
                  .job(job)
                  .getAsJsonArray("vhosts")
                  .get(0)
                  .getAsJsonObject()
                  .get("node")
                  .getAsString());
          assertTrue(
              Files.isDirectory(
                  cohort.home.resolve(
                      "cluster/nodes/" + other + "/images/" + ckpt + "/" + job + "-0/criu")),
              "image copied to " + other);
          assertEquals(0, cohort.await(job));
          assertEquals(expected, cohort.log(job), "restarted on " + other);
        }
        CohortHarness.Result unknownTarget = cohort.cohort("restart", ckpt, "--nodes", "n9");
        assertNotEquals(0, unknownTarget.rc());
        assertTrue(unknownTarget.err().contains("node n9 is not known"), unknownTarget.err());

        // A dead agent (n2, which holds the image): its node is reported down and refuses
        // new work and restarts, with the reason; the job (last run on n1) is unchanged.
        long pid = cohort.daemonPid("n2");
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroy);
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (alive(cohort, "n2") && System.nanoTime() < deadline) {
          Thread.sleep(250);
        }
        assertFalse(alive(cohort, "n2"));
        int jobsBefore =
            JsonParser.parseString(cohort.cohort("ps", "--json").ok().out())
                .getAsJsonArray()
                .size();
        CohortHarness.Result down = cohort.cohort("run", "--nodes", "n2", "--", "true");
        assertNotEquals(0, down.rc());
        assertTrue(down.err().contains("node n2 is down"), down.err());
        CohortHarness.Result unknown = cohort.cohort("run", "--nodes", "n9", "--", "true");
        assertNotEquals(0, unknown.rc());
        assertTrue(unknown.err().contains("node n9 is not known"), unknown.err());
        assertEquals(
            jobsBefore,
            JsonParser.parseString(cohort.cohort("ps", "--json").ok().out())
                .getAsJsonArray()
                .size(),
            "no job was created");
        CohortHarness.Result downTarget = cohort.cohort("restart", ckpt, "--nodes", "n2");
        assertNotEquals(0, downTarget.rc());
        assertTrue(downTarget.err().contains("node n2 is down"), downTarget.err());
        // The same for a set of nodes: refused if any node named is down or unknown, even one
        // that would have been left unused, before anything changes.
        CohortHarness.Result downInSet =
            cohort.cohort("run", "--vhosts", "2", "--nodes", "n1,n2,n3", "--", "true");
        assertNotEquals(0, downInSet.rc());
        assertTrue(downInSet.err().contains("node n2 is down"), downInSet.err());
        CohortHarness.Result unknownInSet =
            cohort.cohort("run", "--vhosts", "2", "--nodes", "n1,n3,n9", "--", "true");
        assertNotEquals(0, unknownInSet.rc());
        assertTrue(unknownInSet.err().contains("node n9 is not known"), unknownInSet.err());
        assertEquals(
            jobsBefore,
            JsonParser.parseString(cohort.cohort("ps", "--json").ok().out())
                .getAsJsonArray()
                .size(),
            "no job was created");
        for (String set : new String[] {"n1,n3,n2", "n3,n9"}) {
          CohortHarness.Result refused = cohort.cohort("restart", ckpt, "--nodes", set);
          assertNotEquals(0, refused.rc(), set);
          assertTrue(
              refused
                  .err()
                  .contains(set.contains("n9") ? "node n9 is not known" : "node n2 is down"),
              refused.err());
        }
        assertEquals("JOB_STATE_EXITED", cohort.state(job), "a refused restart changes nothing");
        assertEquals(1, cohort.job(job).getAsJsonArray("vhosts").size());
        assertEquals(
            "n1",
            cohort
                .job(job)
                .getAsJsonArray("vhosts")
                .get(0)
                .getAsJsonObject()
                .get("node")
                .getAsString(),
            "still where it last ran");
        assertEquals(expected, cohort.log(job));
      } finally {
        cohort.cohort(Duration.ofMinutes(2), "cluster", "down");
      }
      assertFalse(exists("ip", "link", "show", PREFIX + "-br"), "bridge removed");
      assertFalse(exists("ip", "netns", "exec", PREFIX + "-n1", "true"), "namespaces removed");
      assertFalse(Files.exists(cohort.home.resolve("cluster/coordinator.address")));
    }
  }

  /** Proto JSON leaves out false booleans. */
  private static boolean alive(CohortHarness cohort, String name) {
    JsonObject n = node(cohort, name);
    return n.has("alive") && n.get("alive").getAsBoolean();
  }

  private static String[] concat(String[] a, String[] b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
