package io.cohort.agent;

import io.cohort.common.CohortException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A vhost's link to its node: a veth pair, the vhost side ({@code eth0}) inside the vhost with
 * the vhost's address as a /32, the node side ({@code HOST_VETH}) in the agent's network
 * namespace. Plain L3 routing: the vhost's default route goes to {@value #GATEWAY}, which the
 * node side owns; the node has a /32 route per local vhost and forwards between them, each
 * job with its own routing table (see {@link #isolate}).
 */
final class VhostNetwork {
  /** Link-local gateway address every vhost uses; owned by each node-side veth. */
  static final String GATEWAY = "169.254.1.1";

  private VhostNetwork() {}

  /** Node-side name of a vhost's veth (at most 15 characters). */
  static String hostVeth(String vhostId) {
    String name = "cv" + vhostId;
    if (name.length() > 15) {
      throw CohortException.invalid("vhost id %s is too long for an interface name", vhostId);
    }
    return name;
  }

  /**
   * Removes a node-side veth left by an earlier incarnation of the vhost (its network
   * namespace can outlive its processes). Only called when that incarnation is known dead: a
   * stale veth still carrying the vhost's address would answer the job's restored
   * connections with resets.
   */
  static void removeStale(String vhostId) {
    String host = hostVeth(vhostId);
    if (exists(host)) {
      runQuietly("ip", "link", "del", host);
    }
  }

  private static boolean exists(String link) {
    try {
      Process p = new ProcessBuilder("ip", "link", "show", link).redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /**
   * MTU of the vhosts' links and of the overlay's TUN. Nothing of a vhost's traffic crosses a
   * physical link as it is (between nodes it rides the overlay's TCP connection), so the links
   * take the largest IP packet: every packet costs the overlay the same work whatever its
   * size, and with 1500-byte packets it tops out at a few tens of MB/s.
   */
  static final String MTU = "65000";

  /** Creates the veth pair of a vhost (whose init is {@code pid}) and configures both sides. */
  static void attach(long pid, String vhostId, String address) {
    String host = hostVeth(vhostId);
    removeStale(vhostId);
    run("ip", "link", "add", host, "mtu", MTU, "type", "veth", "peer", "name", "eth0", "mtu",
        MTU, "netns", Long.toString(pid));
    String ns = "--net=/proc/" + pid + "/ns/net";
    run("nsenter", ns, "ip", "addr", "add", address + "/32", "dev", "eth0");
    run("nsenter", ns, "ip", "link", "set", "eth0", "up");
    run("nsenter", ns, "ip", "route", "add", GATEWAY, "dev", "eth0", "scope", "link");
    run("nsenter", ns, "ip", "route", "add", "default", "via", GATEWAY, "dev", "eth0");
    configureHostSide(host, address);
  }

  /**
   * The node side of a vhost's veth: up, owning the gateway address, answering ARP for the
   * node, and a /32 route to the vhost. Also used after a restore, where CRIU re-creates the
   * veth pair.
   */
  static void configureHostSide(String host, String address) {
    run("ip", "addr", "replace", GATEWAY + "/32", "dev", host);
    run("ip", "link", "set", host, "mtu", MTU, "up");
    sysctl("net/ipv4/ip_forward", "1");
    sysctl("net/ipv4/conf/" + host + "/proxy_arp", "1");
    sysctl("net/ipv4/conf/" + host + "/rp_filter", "0");
    sysctl("net/ipv4/conf/all/rp_filter", "0");
    run("ip", "route", "replace", address + "/32", "dev", host);
    isolate(host, address);
  }

  /**
   * Jobs are isolated from each other: traffic from a job's subnet (/24) is routed with that
   * job's own table, which holds only the job's vhosts and an unreachable default. A vhost
   * can reach its job's other vhosts and nothing else.
   */
  private static void isolate(String host, String address) {
    String subnet = address.substring(0, address.lastIndexOf('.')) + ".0/24";
    String table = tableOf(address);
    runQuietly("ip", "rule", "del", "from", subnet, "lookup", table);
    run("ip", "rule", "add", "from", subnet, "lookup", table, "priority", "100");
    run("ip", "route", "replace", "unreachable", "default", "table", table);
    run("ip", "route", "replace", address + "/32", "dev", host, "table", table);
  }

  /** The routing table of the job whose /24 holds {@code address} (one /24 per job). */
  static String tableOf(String address) {
    return Integer.toString(1000 + Integer.parseInt(address.split("\\.")[2]));
  }

  private static void runQuietly(String... cmd) {
    try {
      run(cmd);
    } catch (CohortException absent) {
      // nothing to remove
    }
  }

  private static void sysctl(String key, String value) {
    try {
      Files.writeString(Path.of("/proc/sys", key), value);
    } catch (IOException e) {
      throw CohortException.internal("cannot set " + key + "=" + value + ": " + e, e);
    }
  }

  /** Runs an iproute2 (or nsenter) command; a failure is an error with its output. */
  static void run(String... cmd) {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      if (p.waitFor() != 0) {
        throw CohortException.internal("node networking: `" + String.join(" ", cmd)
            + "` failed: " + out, null);
      }
    } catch (IOException e) {
      throw CohortException.internal("node networking: cannot run " + cmd[0] + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw CohortException.internal("interrupted", e);
    }
  }

  /** Hostfile lines for mpirun: every vhost address with its slots. */
  static List<String> hostfile(List<String> peers, int slots) {
    List<String> lines = new ArrayList<>();
    for (String p : peers) {
      lines.add(p + " slots=" + slots);
    }
    return lines;
  }
}
