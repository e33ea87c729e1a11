package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.cohort.common.ProcessRunner;
import io.cohort.proto.v1.JobNetworkPlan;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The kernel data path, programmed for real between two node namespaces joined by a veth (the
 * fabric), each with one "vhost" namespace routed as {@link IpVhostNetwork} does: a connection
 * between the vhosts crosses VXLAN, a vhost of another job's block gets nowhere, and removing the
 * job leaves no device, neighbour or FDB entry. Needs root and iproute2 (skipped otherwise); every
 * namespace it makes is deleted after, also on failure.
 */
class KernelPathTest {
  private final String tag = "kpt" + ProcessHandle.current().pid() % 100000;
  private final List<String> namespaces = new ArrayList<>();

  private static final JobNetworkPlan PLAN =
      JobNetworkPlan.newBuilder()
          .setSubnet("198.19.0.16/28")
          .setTable(100001)
          .setVni(777)
          .setMarkerAddress("198.19.0.30")
          .build();

  private void sh(String ns, String... cmd) {
    List<String> all = new ArrayList<>(List.of("ip", "netns", "exec", ns));
    all.addAll(List.of(cmd));
    ProcessRunner.check("test network", all.toArray(String[]::new));
  }

  private String netns(String name) {
    String ns = tag + name;
    ProcessRunner.check("test network", "ip", "netns", "add", ns);
    namespaces.add(ns);
    sh(ns, "ip", "link", "set", "lo", "up");
    // The agent's TUN, where diverted packets and markers go (nobody reads it here).
    sh(ns, "ip", "tuntap", "add", "dev", VhostOverlay.TUN, "mode", "tun");
    sh(ns, "ip", "link", "set", VhostOverlay.TUN, "up");
    return ns;
  }

  /** A vhost namespace behind {@code node}, with {@code address}, in the plan's table. */
  private String vhost(String node, String name, String address) {
    String v = netns(name);
    String host = tag + name + "h";
    sh(node, "ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", v);
    sh(v, "ip", "addr", "add", address + "/32", "dev", "eth0");
    sh(v, "ip", "link", "set", "eth0", "up");
    sh(v, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link");
    sh(v, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0");
    sh(node, "ip", "addr", "replace", "169.254.1.1/32", "dev", host);
    sh(node, "ip", "link", "set", host, "up");
    sh(node, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf." + host + ".proxy_arp=1");
    sh(
        node,
        "sysctl",
        "-qw",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf." + host + ".rp_filter=0");
    String table = Integer.toString(PLAN.getTable());
    ProcessRunner.run(
        "ip",
        "netns",
        "exec",
        node,
        "ip",
        "rule",
        "add",
        "from",
        PLAN.getSubnet(),
        "lookup",
        table,
        "priority",
        "100");
    sh(node, "ip", "route", "replace", "unreachable", "default", "table", table);
    sh(node, "ip", "route", "replace", address + "/32", "dev", host, "table", table);
    return v;
  }

  /**
   * Whether a TCP connection from {@code ns} to {@code address} gets an answer (a refusal is one).
   */
  private boolean reaches(String ns, String address) {
    ProcessRunner.Result r =
        ProcessRunner.run(
            "ip",
            "netns",
            "exec",
            ns,
            "timeout",
            "3",
            "bash",
            "-c",
            "exec 3<>/dev/tcp/" + address + "/9");
    return r.output().contains("refused");
  }

  @AfterEach
  void removeNamespaces() {
    for (String ns : namespaces) {
      ProcessRunner.run("ip", "netns", "del", ns); // takes its links with it
    }
  }

  @Test
  void vhostsOnTwoNodesTalkThroughVxlanAndNothingIsLeftAfter() {
    assumeTrue(
        ProcessHandle.current().info().user().orElse("").equals("root")
            && ProcessRunner.run("ip", "-V").ok(),
        "needs root and iproute2");
    String a = netns("a");
    String b = netns("b");
    ProcessRunner.check(
        "test network",
        "ip",
        "link",
        "add",
        tag + "fa",
        "type",
        "veth",
        "peer",
        "name",
        tag + "fb");
    ProcessRunner.check("test network", "ip", "link", "set", tag + "fa", "netns", a);
    ProcessRunner.check("test network", "ip", "link", "set", tag + "fb", "netns", b);
    sh(a, "ip", "addr", "add", "198.18.77.11/24", "dev", tag + "fa");
    sh(a, "ip", "link", "set", tag + "fa", "up");
    sh(b, "ip", "addr", "add", "198.18.77.12/24", "dev", tag + "fb");
    sh(b, "ip", "link", "set", tag + "fb", "up");
    String va = vhost(a, "va", "198.19.0.16");
    String vb = vhost(b, "vb", "198.19.0.17");
    DataPath path = new DataPath(true, 1500);
    KernelPath ka = new KernelPath("198.18.77.11", path, List.of("ip", "netns", "exec", a));
    KernelPath kb = new KernelPath("198.18.77.12", path, List.of("ip", "netns", "exec", b));
    ka.configure(PLAN, List.of(new KernelPath.Remote("198.19.0.17", "198.18.77.12")));
    kb.configure(PLAN, List.of(new KernelPath.Remote("198.19.0.16", "198.18.77.11")));
    // A second configure (a restart) replaces the device; the path works the same.
    kb.configure(PLAN, List.of(new KernelPath.Remote("198.19.0.16", "198.18.77.11")));

    assertTrue(reaches(va, "198.19.0.17"), "a vhost reaches its job's vhost on the other node");
    assertTrue(reaches(vb, "198.19.0.16"), "and back");
    kb.divert(PLAN); // the job is frozen on b: its arrivals go to b's agent (its TUN)
    assertFalse(reaches(va, "198.19.0.17"), "diverted: the vhost on b sees nothing");
    kb.undivert(PLAN);
    assertTrue(reaches(va, "198.19.0.17"), "and again after the resume");
    kb.divert(PLAN);
    kb.divert(PLAN); // a second divert leaves one rule: one undivert lets the packets through
    kb.undivert(PLAN);
    assertTrue(reaches(va, "198.19.0.17"), "undiverted after two diverts");
    kb.divert(PLAN); // left diverted: remove() cleans that up too
    assertFalse(reaches(va, "198.19.0.40"), "nothing outside its job");
    assertEquals(
        "1450",
        ProcessRunner.check(
                "test",
                "ip",
                "netns",
                "exec",
                a,
                "cat",
                "/sys/class/net/" + KernelPath.device(PLAN) + "/mtu")
            .strip(),
        "fabric MTU minus VXLAN");

    ka.remove(PLAN);
    kb.remove(PLAN);
    for (String ns : List.of(a, b)) {
      assertFalse(
          ProcessRunner.run(
                  "ip", "netns", "exec", ns, "ip", "link", "show", KernelPath.device(PLAN))
              .ok(),
          "device removed in " + ns);
      String fdb = ProcessRunner.run("ip", "netns", "exec", ns, "bridge", "fdb", "show").output();
      assertFalse(fdb.contains("02:c0:"), "no FDB entry left: " + fdb);
      String neigh = ProcessRunner.run("ip", "netns", "exec", ns, "ip", "neigh", "show").output();
      assertFalse(neigh.contains(KernelPath.device(PLAN)), "no neighbour entry left: " + neigh);
      String routes =
          ProcessRunner.run("ip", "netns", "exec", ns, "ip", "route", "show", "table", "100001")
              .output();
      assertFalse(routes.contains(KernelPath.device(PLAN)), "no route left: " + routes);
      String rules = ProcessRunner.run("ip", "netns", "exec", ns, "ip", "rule", "show").output();
      assertFalse(rules.contains(KernelPath.device(PLAN)), "no rule left: " + rules);
    }
    assertFalse(reaches(va, "198.19.0.17"), "and the path is gone");
  }

  @Test
  void aNodesDeviceMacCarriesItsAddress() {
    assertEquals("02:c0:c6:12:00:0b", KernelPath.mac("198.18.0.11"));
    assertEquals("cx100001", KernelPath.device(PLAN));
  }
}
