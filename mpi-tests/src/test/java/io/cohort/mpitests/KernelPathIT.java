package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The kernel data path on an emulated cluster (agents with {@code --data-path kernel}): numbered
 * UDP datagrams stream from a vhost on n1 to one on n2 at a steady pace. Until the first checkpoint
 * no packet goes through an agent (the overlay counters of both nodes stay at 0); then ten
 * checkpoints, a {@code --stop} and a restart on n2 and n3 lose and repeat none of them (UDP has no
 * retransmission: a datagram in flight at a cut is there only if the cut recorded it); after the
 * job, no VXLAN device of it is left on any node.
 */
class KernelPathIT {
  private static final String PREFIX = "cohortkp";
  private static CohortHarness cohort;

  @BeforeAll
  static void up() throws Exception {
    cohort = new CohortHarness("kernelpath");
    cohort.extraEnv.put("COHORT_DATA_PATH", "kernel");
    cohort.clusterUp(3, PREFIX, "198.18.81");
  }

  @AfterAll
  static void down() throws Exception {
    cohort.closeCluster();
  }

  /** The overlay counters of a node as its last heartbeat gave them: {in, out}. */
  private static long[] overlayPackets(String node) {
    for (JsonElement e :
        JsonParser.parseString(cohort.cohort("nodes", "--json").ok().out()).getAsJsonArray()) {
      JsonObject n = e.getAsJsonObject();
      if (n.get("node").getAsString().equals(node)) {
        return new long[] {count(n, "overlay_packets_in"), count(n, "overlay_packets_out")};
      }
    }
    throw new AssertionError("node " + node + " not listed");
  }

  private static long count(JsonObject n, String field) {
    return n.has(field) ? Long.parseLong(n.get(field).getAsString()) : 0; // int64: a string
  }

  private static int received(String job) {
    Matcher m = Pattern.compile("received (\\d+)\n").matcher(cohort.log(job));
    int last = 0;
    while (m.find()) {
      last = Integer.parseInt(m.group(1));
    }
    return last;
  }

  private static void awaitReceived(String job, int n) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
    while (received(job) < n) {
      assertTrue(System.nanoTime() < deadline, "fewer than " + n + ":\n" + cohort.log(job));
      Thread.sleep(300);
    }
  }

  @Test
  void datagramsCrossTheKernelAndSurviveEveryCutAndARestart() throws Exception {
    Path stop = cohort.home.resolve("udp-stop");
    String job =
        cohort
            .cohort(
                "run",
                "--detach",
                "--json",
                "--nodes",
                "n1,n2",
                "--slots",
                "1",
                "--",
                "mpirun",
                "-np",
                "2",
                "python3",
                CohortHarness.REPO.resolve("mpi-tests/src/test/python/udp_numbers.py").toString(),
                stop.toString())
            .ok()
            .json()
            .get("job")
            .getAsString();
    awaitReceived(job, 3000);
    Thread.sleep(2500); // two heartbeats: the counters are those of the exchange going on
    for (String n : new String[] {"n1", "n2"}) {
      long[] c = overlayPackets(n);
      assertEquals(0, c[0] + c[1], n + ": no packet through the agent in the steady state");
    }

    for (int i = 0; i < 10; i++) {
      int before = received(job);
      JsonObject c = cohort.checkpoint(job, false);
      System.out.printf(
          "checkpoint %s: %s datagrams received before, %s packets in flight recorded%n",
          c.get("checkpoint").getAsString(), before, c.get("inflight_packets"));
      awaitReceived(job, before + 1000);
    }
    Thread.sleep(2500);
    assertTrue(
        overlayPackets("n1")[1] + overlayPackets("n2")[1] > 0,
        "the cuts went through the agents (markers at least): the counters count");

    JsonObject stopped = cohort.checkpoint(job, true);
    System.out.printf(
        "checkpoint --stop: %s received before, %s packets in flight recorded%n",
        received(job), stopped.get("inflight_packets"));
    assertEquals("JOB_STATE_STOPPED", cohort.state(job));
    cohort.cohort("restart", job, "--nodes", "n2,n3", "--detach").ok();
    int before = received(job);
    awaitReceived(job, before + 3000);
    Files.writeString(stop, "");
    assertEquals(0, cohort.await(job), cohort.log(job));

    String out = cohort.log(job);
    Matcher m =
        Pattern.compile("receiver: sent (\\d+) received (\\d+) missing (\\d+) repeated (\\d+)")
            .matcher(out);
    assertTrue(m.find(), out);
    assertTrue(Long.parseLong(m.group(1)) > 20_000, "datagrams sent: " + m.group(1));
    assertEquals("0", m.group(3), "no datagram lost: " + m.group() + "\n" + out);
    assertEquals("0", m.group(4), "none repeated: " + m.group());

    // The job's vhosts are ended (the reconcile step after it exited): nothing of it is left.
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    for (String n : new String[] {"n1", "n2", "n3"}) {
      String state;
      while ((state = nodeNetwork(n)).contains("cx1") && System.nanoTime() < deadline) {
        Thread.sleep(300);
      }
      assertFalse(state.contains("cx1"), n + " keeps a device, rule or route of the job: " + state);
    }
  }

  /** The links, rules and the job tables' routes of a node's namespace, as text. */
  private static String nodeNetwork(String node) throws Exception {
    String ns = PREFIX + "-" + node;
    StringBuilder all = new StringBuilder();
    for (String what : new String[] {"link", "rule", "route show table all"}) {
      java.util.List<String> cmd =
          new java.util.ArrayList<>(java.util.List.of("ip", "-n", ns, "-o"));
      cmd.addAll(java.util.List.of(what.split(" ")));
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      all.append(new String(p.getInputStream().readAllBytes())).append('\n');
      p.waitFor();
    }
    return all.toString();
  }
}
