package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.ProcessRunner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How the packets of a job cross between nodes: through the kernel (VXLAN between node addresses,
 * {@link KernelPath}) or every one through the agents' user-space overlay (TUN and channel-drain,
 * kept as an option: it needs nothing of the kernel but a TUN device). With the kernel path the
 * vhosts' links take the fabric's MTU minus the VXLAN encapsulation, so that no vhost packet needs
 * fragmenting on the way; the user-space overlay has no such limit and keeps the largest packet.
 *
 * @param kernel whether vhost packets between nodes go through the kernel
 * @param fabricMtu MTU of the node's link to the other nodes (used with the kernel path)
 */
public record DataPath(boolean kernel, int fabricMtu) {
  /** Outer IPv4 (20), UDP (8), VXLAN (8) and inner Ethernet (14) headers. */
  public static final int VXLAN_OVERHEAD = 50;

  /** The vhost MTU of the user-space overlay (see {@link VhostNetwork#MTU}). */
  static final int OVERLAY_MTU = 65000;

  public DataPath {
    if (kernel && fabricMtu - VXLAN_OVERHEAD < 1280) {
      throw CohortException.invalid(
          "the fabric MTU %d leaves less than 1280 bytes for a vhost's packets under VXLAN "
              + "(%d bytes of headers); raise the fabric's MTU or use --data-path overlay",
          fabricMtu, VXLAN_OVERHEAD);
    }
  }

  public static DataPath overlay() {
    return new DataPath(false, 0);
  }

  /** MTU of the vhosts' links. */
  public int vhostMtu() {
    return kernel ? Math.min(OVERLAY_MTU, fabricMtu - VXLAN_OVERHEAD) : OVERLAY_MTU;
  }

  /** MTU of the link of this network namespace that holds {@code address}. */
  public static int fabricMtuOf(String address) {
    // "2: eth0    inet 198.18.0.11/24 ..." for the address's own link
    String out =
        ProcessRunner.check("node networking", "ip", "-o", "-4", "addr", "show", "to", address);
    String[] words = out.strip().split("\\s+");
    if (words.length < 2) {
      throw CohortException.precondition(
          "no link of this node has address %s; give the agent's --listen an address of the "
              + "node's link to the other nodes",
          address);
    }
    String link = words[1].replaceAll("@.*", "");
    try {
      return Integer.parseInt(Files.readString(Path.of("/sys/class/net", link, "mtu")).strip());
    } catch (IOException | NumberFormatException e) {
      throw CohortException.internal("cannot read the MTU of " + link + ": " + e, e);
    }
  }
}
