package io.cohort.cli;

import io.cohort.common.DaemonIdentity;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "ca",
    mixinStandardHelpOptions = true,
    description = {
      "The cluster's certificate authority: the daemons accept only each other's certificates "
          + "from it (mutual TLS), and the CLI checks the coordinator's against it.",
      "Run as root on one machine; copy each daemon's NAME.crt, NAME.key, checkpoint.key (both "
          + "mode 600) and ca.crt to its machine's $COHORT_HOME/tls (`issue --out` gathers them), "
          + "and ca.crt alone to every machine the CLI runs on. `cohort cluster up` does all of it "
          + "for the emulated cluster."
    },
    subcommands = {CaCommand.Init.class, CaCommand.Issue.class, CaCommand.Key.class})
final class CaCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.err);
  }

  static Path dirOrDefault(Path dir) {
    return dir != null ? dir : Embedded.Settings.fromEnvironment().home().resolve("tls");
  }

  @Command(
      name = "init",
      mixinStandardHelpOptions = true,
      description =
          "Create the cluster CA: ca.crt (readable by all) and ca.key (root only; keep it off "
              + "the nodes if you can, it makes certificates every daemon trusts); and the "
              + "cluster's checkpoint key, checkpoint.key (root only), unless there is one.")
  static final class Init implements Callable<Integer> {
    @Option(names = "--dir", paramLabel = "DIR", description = "where (default: $COHORT_HOME/tls)")
    Path dir;

    @Override
    public Integer call() throws Exception {
      ClusterCa ca = new ClusterCa(dirOrDefault(dir));
      ca.init();
      System.out.printf(
          "cohort ca: cluster CA made: %s (for every machine), %s (root only); checkpoint key %s "
              + "(root only, for every daemon)%n",
          ca.caCert(), ca.dir().resolve(ClusterCa.CA_KEY), ca.checkpointKey());
      return 0;
    }
  }

  @Command(
      name = "key",
      mixinStandardHelpOptions = true,
      description = {
        "Create the cluster's checkpoint key, checkpoint.key (32 random bytes, root only), unless "
            + "there is one: the daemons sign checkpoint records and image manifests with it and "
            + "refuse those it did not sign. Every daemon needs the same key in its --tls "
            + "directory (`issue --out` copies it); a daemon refuses to start without it.",
        "`ca init` makes it; this is for a CA made before. Never replace a key in use: every "
            + "checkpoint signed with it would be refused."
      })
  static final class Key implements Callable<Integer> {
    @Option(names = "--dir", paramLabel = "DIR", description = "where (default: $COHORT_HOME/tls)")
    Path dir;

    @Override
    public Integer call() throws Exception {
      ClusterCa ca = new ClusterCa(dirOrDefault(dir));
      boolean made = ca.ensureCheckpointKey();
      System.out.printf(
          "cohort ca: checkpoint key %s: %s%n",
          made ? "made" : "kept (there is one already)", ca.checkpointKey());
      return 0;
    }
  }

  @Command(
      name = "issue",
      mixinStandardHelpOptions = true,
      description =
          "Issue the certificate of a daemon: NAME is `coordinator` or a node's name (as its "
              + "agent's --node); writes NAME.crt and NAME.key (root only).")
  static final class Issue implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "NAME", description = "coordinator, or a node's name")
    String name;

    @Option(
        names = "--address",
        required = true,
        split = ",",
        paramLabel = "ADDR",
        description =
            "the IP addresses and DNS names the daemon is dialed at (its --listen host; for the "
                + "coordinator also the names users give --coordinator), comma-separated")
    List<String> addresses;

    @Option(
        names = "--dir",
        paramLabel = "DIR",
        description = "the CA's directory (default: $COHORT_HOME/tls)")
    Path dir;

    @Option(
        names = "--out",
        paramLabel = "DIR",
        description =
            "write the certificate, its key and copies of ca.crt and checkpoint.key there "
                + "(default: --dir)")
    Path out;

    @Override
    public Integer call() throws Exception {
      ClusterCa ca = new ClusterCa(dirOrDefault(dir));
      DaemonIdentity.Role role =
          name.equals(CoordinatorCommand.COORDINATOR_NAME)
              ? DaemonIdentity.Role.COORDINATOR
              : DaemonIdentity.Role.AGENT;
      Path to = out != null ? out : ca.dir();
      ca.issue(name, role, addresses, to);
      System.out.printf(
          "cohort ca: %s certificate for %s (%s), valid %d days: %s, %s%n",
          role.ou(),
          name,
          String.join(", ", addresses),
          ClusterCa.CERT_DAYS,
          ClusterCa.cert(to, name),
          ClusterCa.key(to, name));
      return 0;
    }
  }
}
