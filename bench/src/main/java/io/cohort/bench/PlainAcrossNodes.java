package io.cohort.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

/**
 * The baseline without Cohort for jobs across nodes: plain {@code mpirun} spanning two node
 * namespaces of the emulated cluster, its ranks talking TCP over the fabric with the kernel's
 * routing and nothing of Cohort in between. Open MPI starts its daemon on the other node through a
 * tiny launcher that enters that node's namespace; each side gets a hostname of its own (in a UTS
 * namespace), or Open MPI would take both for one node.
 */
final class PlainAcrossNodes {
  private PlainAcrossNodes() {}

  /** The argv prefix of a plain {@code mpirun -np 2} with one rank on n1 and one on n2. */
  static List<String> mpirun(Cli cli) {
    Path rsh = cli.home.resolve("netns-rsh");
    StringBuilder cases = new StringBuilder();
    for (String node : List.of("n1", "n2")) {
      cases.append(String.format("  %s) ns=%s ;;%n", address(node), Cluster.PREFIX + "-" + node));
    }
    String script =
        "#!/bin/sh\n"
            + "# Open MPI's rsh agent into a node namespace of the emulated cluster\n"
            + "host=$1; shift\n"
            + "case \"$host\" in\n"
            + cases
            + "  *) echo \"netns-rsh: unknown host $host\" >&2; exit 1 ;;\n"
            + "esac\n"
            + "exec ip netns exec \"$ns\" unshare --uts sh -c "
            + "'hostname \"$1\"; shift; exec sh -c \"$*\"' sh \"$ns\" \"$@\"\n";
    try {
      Files.writeString(rsh, script);
      Files.setPosixFilePermissions(rsh, PosixFilePermissions.fromString("rwxr-xr-x"));
    } catch (IOException e) {
      throw new IllegalStateException("cannot write " + rsh, e);
    }
    String head = Cluster.PREFIX + "-n1";
    return new ArrayList<>(
        List.of(
            "ip",
            "netns",
            "exec",
            head,
            "unshare",
            "--uts",
            "sh",
            "-c",
            "hostname " + head + "-mpirun; exec \"$@\"",
            "sh",
            "mpirun",
            "--allow-run-as-root",
            "--host",
            address("n1") + ":1," + address("n2") + ":1",
            "-np",
            "2",
            // Each "node" is a namespace of the same 2-core machine: bound, both ranks would take
            // core 0 and poll it in turns (8 ms round trips). Unbound, as Cohort runs its jobs,
            // they get a core each, as on two real nodes.
            "--bind-to",
            "none",
            "--mca",
            "plm_rsh_agent",
            rsh.toString(),
            "--mca",
            "btl",
            "self,tcp",
            "--mca",
            "btl_tcp_if_include",
            "eth0",
            "--mca",
            "oob_tcp_if_include",
            "eth0"));
  }

  private static String address(String node) {
    return Cluster.SUBNET + "." + (10 + Integer.parseInt(node.substring(1)));
  }
}
