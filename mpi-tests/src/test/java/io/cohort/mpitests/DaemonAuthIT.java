package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Daemons authenticate each other (mutual TLS with the cluster's CA), on an emulated cluster: a
 * well-formed call or overlay HELLO without a certificate, with another CA's certificate, or
 * without TLS is refused by the coordinator's agent port, an agent and an overlay port, from the
 * host. From inside a job's vhost none of them can be reached at all, its own node's included. The
 * same probe with a certificate of the cluster is served, so a refusal is the daemons' doing, not
 * the probe's.
 */
class DaemonAuthIT {
  private static final String SUBNET = "198.18.71";
  private static final Path TEST_CLASSES =
      CohortHarness.REPO.resolve("mpi-tests/target/test-classes");
  private static final Path JAR = CohortHarness.REPO.resolve("cli/target/cohort.jar");

  @Test
  void aPeerWithoutACertificateOfTheClusterIsRefusedFromTheHostAndFromAVhost() throws Exception {
    try (CohortHarness cohort = new CohortHarness("daemon-auth")) {
      try {
        cohort.clusterUp(2, "cohortau", SUBNET);
        Path tls = cohort.home.resolve("cluster/tls");
        Path ca = tls.resolve("ca.crt");
        // Another cluster's CA, issuing certificates with the same names, by the documented
        // commands.
        Path other = cohort.home.resolve("other-ca");
        cohort.cohort("ca", "init", "--dir", other.toString()).ok();
        for (String n : List.of("n1", "n2", "coordinator")) {
          cohort
              .cohort(
                  "ca",
                  "issue",
                  n,
                  "--address",
                  SUBNET + ".1," + SUBNET + ".11",
                  "--dir",
                  other.toString())
              .ok();
        }
        List<String[]> intruders = probes(ca, other);

        // From the host.
        List<String> host = new ArrayList<>();
        for (String[] p : intruders) {
          host.add(probe(p));
        }
        System.out.println("DaemonAuthIT from the host:\n  " + String.join("\n  ", host));
        for (String line : host) {
          // gRPC: UNAVAILABLE, the handshake failed (a refusal by a service would be another code)
          assertTrue(
              line.contains(line.startsWith("overlay") ? " REFUSED " : " REFUSED UNAVAILABLE "),
              "refused in the handshake from the host: " + line);
        }
        // The same probes with the cluster's own certificates are served.
        String coordinatorCalls =
            probe(
                new String[] {
                  "agent",
                  SUBNET + ".11:7071",
                  "cert",
                  ca.toString(),
                  tls.resolve("coordinator.crt").toString(),
                  tls.resolve("coordinator.key").toString()
                });
        assertTrue(coordinatorCalls.endsWith(" SERVED"), coordinatorCalls);
        // A heartbeat would change the coordinator's view of n1: the registry's control is the
        // coordinator's own certificate, which passes the handshake and is refused by role.
        String wrongRole =
            probe(
                new String[] {
                  "registry",
                  SUBNET + ".1:7071",
                  "cert",
                  ca.toString(),
                  tls.resolve("coordinator.crt").toString(),
                  tls.resolve("coordinator.key").toString()
                });
        assertTrue(wrongRole.contains(" REFUSED PERMISSION_DENIED "), wrongRole);
        String overlayPeer =
            probe(
                new String[] {
                  "overlay:n1",
                  SUBNET + ".11:7072",
                  "cert",
                  ca.toString(),
                  tls.resolve("n2.crt").toString(),
                  tls.resolve("n2.key").toString()
                });
        assertTrue(overlayPeer.endsWith(" SERVED"), overlayPeer);

        // From inside a job's vhost: the head vhost (on n1) of a job on n1 and n2, which has the
        // network of a job of several vhosts (a job of one vhost has none but its loopback). One
        // job runs every probe, one line each.
        Path script = cohort.home.resolve("probes.sh");
        StringBuilder sh = new StringBuilder("#!/bin/sh\n");
        sh.append("echo \"routes: $(/usr/sbin/ip -4 route | tr '\\n' ';')\"\n");
        for (String[] p : intruders) {
          sh.append(String.join(" ", javaProbe(p))).append('\n');
        }
        Files.writeString(script, sh.toString());
        CohortHarness.Result run =
            cohort.cohort(
                Duration.ofMinutes(5), "run", "--nodes", "n1,n2", "--", "sh", script.toString());
        assertEquals(0, run.rc(), run.err());
        assertTrue(run.out().contains("routes: default via"), "a networked vhost: " + run.out());
        List<String> vhost =
            run.out()
                .lines()
                .filter(
                    l ->
                        l.startsWith("registry ")
                            || l.startsWith("agent ")
                            || l.startsWith("overlay:"))
                .toList();
        System.out.println(
            "DaemonAuthIT from a vhost on n1 ("
                + run.out().lines().filter(l -> l.startsWith("routes:")).findFirst().orElse("")
                + "):\n  "
                + String.join("\n  ", vhost));
        assertEquals(intruders.size(), vhost.size(), run.out());
        // A job does not reach the daemons' addresses at all: not its own node's (the node
        // refuses what a vhost sends to it), not the other nodes' or the coordinator's (its job's
        // routing table has only its vhosts).
        for (String line : vhost) {
          assertTrue(line.contains(" UNREACHABLE"), "unreachable from a vhost: " + line);
        }
      } finally {
        cohort.closeCluster();
      }
    }
  }

  /** Every port of the daemons, knocked on without a certificate of the cluster. */
  private static List<String[]> probes(Path ca, Path other) {
    String otherCert = other.resolve("n2.crt").toString();
    String otherKey = other.resolve("n2.key").toString();
    String cluster = ca.toString();
    List<String[]> out = new ArrayList<>();
    for (String[] target :
        List.of(
            new String[] {"registry", SUBNET + ".1:7071"},
            new String[] {"agent", SUBNET + ".11:7071"},
            new String[] {"agent", SUBNET + ".12:7071"})) {
      out.add(new String[] {target[0], target[1], "plain", cluster});
      out.add(new String[] {target[0], target[1], "nocert", cluster});
      out.add(new String[] {target[0], target[1], "cert", cluster, otherCert, otherKey});
    }
    for (String[] target :
        List.of(
            new String[] {"overlay:n1", SUBNET + ".11:7072"},
            new String[] {"overlay:n2", SUBNET + ".12:7072"})) {
      out.add(new String[] {target[0], target[1], "plain", cluster});
      out.add(new String[] {target[0], target[1], "nocert", cluster, otherCert, otherKey});
      out.add(new String[] {target[0], target[1], "cert", cluster, otherCert, otherKey});
    }
    return out;
  }

  private static List<String> javaProbe(String[] args) {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "java",
                "-XX:TieredStopAtLevel=1",
                "-cp",
                TEST_CLASSES + ":" + JAR,
                "io.cohort.mpitests.DaemonProbe"));
    cmd.addAll(List.of(args));
    return cmd;
  }

  /** Runs the probe on the host; its one line of output. */
  private static String probe(String[] args) throws Exception {
    Process p = new ProcessBuilder(javaProbe(args)).redirectErrorStream(false).start();
    p.getErrorStream().transferTo(java.io.OutputStream.nullOutputStream());
    String out = new String(p.getInputStream().readAllBytes()).strip();
    assertTrue(p.waitFor(2, TimeUnit.MINUTES), "probe finished");
    return out;
  }
}
