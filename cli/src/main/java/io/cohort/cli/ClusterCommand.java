package io.cohort.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "cluster",
    mixinStandardHelpOptions = true,
    description =
        "Start or remove a cluster emulated on this machine (one network namespace "
            + "and agent daemon per node, a coordinator daemon, a bridge between them).",
    subcommands = {
      ClusterCommand.Up.class,
      ClusterCommand.Down.class,
      ClusterCommand.Stop.class,
      ClusterCommand.Start.class,
      ClusterCommand.Kill.class
    })
final class ClusterCommand implements Runnable {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.err);
  }

  @Command(
      name = "up",
      mixinStandardHelpOptions = true,
      description = {
        "Start a coordinator and N nodes named n1..nN. Later `cohort` commands "
            + "use this cluster until `cohort cluster down`."
      })
  static final class Up implements Callable<Integer> {
    @Option(names = "--nodes", defaultValue = "3", description = "number of nodes (default 3)")
    int nodes;

    @Option(
        names = "--prefix",
        defaultValue = "cohort",
        description = "name prefix of the bridge and namespaces (default cohort)")
    String prefix;

    @Option(
        names = "--subnet",
        defaultValue = "198.18.0",
        description =
            "the /24 for node addresses, first three octets (default 198.18.0, a "
                + "range reserved for testing)")
    String subnet;

    @Option(
        names = "--shared-images",
        description =
            "one image directory for all nodes "
                + "($COHORT_HOME/cluster/shared-images), as a cluster file system would give: restarts "
                + "on other nodes copy nothing")
    boolean sharedImages;

    @Option(
        names = "--image-policy",
        paramLabel = "POLICY",
        description = "the coordinator's --image-policy: partner (default) or none")
    String imagePolicy;

    @Option(
        names = "--copy-rate",
        paramLabel = "SIZE",
        description = "the coordinator's --copy-rate: most bytes per second a partner copy reads")
    String copyRate;

    @Option(
        names = "--dead-after",
        paramLabel = "DURATION",
        description = "the coordinator's --dead-after: a node down this long is declared dead")
    String deadAfter;

    @Option(
        names = "--decision-lease",
        paramLabel = "DURATION",
        description =
            "the agents' --decision-lease: how long a frozen checkpoint waits for the "
                + "coordinator's decision before the agent aborts it on its own")
    String decisionLease;

    @Override
    public Integer call() throws Exception {
      List<String> agentOptions = new ArrayList<>();
      if (decisionLease != null) {
        OptionValues.duration("--decision-lease", decisionLease);
        agentOptions.addAll(List.of("--decision-lease", decisionLease));
      }
      List<String> coordinatorOptions = new ArrayList<>();
      if (imagePolicy != null) {
        OptionValues.imagePolicy("--image-policy", imagePolicy); // refused here, not in the log
        coordinatorOptions.addAll(List.of("--image-policy", imagePolicy));
      }
      if (copyRate != null) {
        OptionValues.bytes("--copy-rate", copyRate);
        coordinatorOptions.addAll(List.of("--copy-rate", copyRate));
      }
      if (deadAfter != null) {
        OptionValues.duration("--dead-after", deadAfter);
        coordinatorOptions.addAll(List.of("--dead-after", deadAfter));
      }
      String launcher = System.getenv("COHORT_LAUNCHER");
      if (launcher == null) {
        System.err.println("cohort: run `cluster up` through the ./cohort script");
        return 1;
      }
      new EmulatedCluster(Embedded.Settings.fromEnvironment().home(), System.err)
          .up(
              nodes,
              prefix,
              subnet,
              Path.of(launcher),
              sharedImages,
              coordinatorOptions,
              agentOptions);
      return 0;
    }
  }

  @Command(
      name = "stop",
      mixinStandardHelpOptions = true,
      description =
          "Stop one daemon of the cluster (coordinator or a node's agent), as a crash "
              + "would; its jobs' vhosts keep running. `cohort cluster start NAME` starts it again.")
  static final class Stop implements Callable<Integer> {
    @picocli.CommandLine.Parameters(paramLabel = "NAME", description = "coordinator, n1, n2, ...")
    String name;

    @Override
    public Integer call() throws Exception {
      new EmulatedCluster(Embedded.Settings.fromEnvironment().home(), System.err)
          .restart(name, false);
      return 0;
    }
  }

  @Command(
      name = "start",
      mixinStandardHelpOptions = true,
      description = "Start one daemon of the cluster again (stopping it first if it runs).")
  static final class Start implements Callable<Integer> {
    @picocli.CommandLine.Parameters(paramLabel = "NAME", description = "coordinator, n1, n2, ...")
    String name;

    @Override
    public Integer call() throws Exception {
      new EmulatedCluster(Embedded.Settings.fromEnvironment().home(), System.err)
          .restart(name, true);
      return 0;
    }
  }

  /** What `kill`, `cut` and `join` do to a node, on the cluster of this home. */
  private static NodeFaults faults() {
    return new NodeFaults(Embedded.Settings.fromEnvironment().home(), System.err);
  }

  @Command(
      name = "kill",
      mixinStandardHelpOptions = true,
      description =
          "Kill a node as a machine dies: SIGKILL to its agent daemon, to every vhost on it and to"
              + " anything else in its namespace, all at once. `cohort cluster start NODE` brings"
              + " it back (with what is left on its disk).")
  static final class Kill implements Callable<Integer> {
    @Parameters(paramLabel = "NODE", description = "n1, n2, ...")
    String node;

    @Option(
        names = "--wipe-images",
        description =
            "also delete the node's image store, as a dead disk would (refused with"
                + " --shared-images, whose store is every node's)")
    boolean wipeImages;

    @Override
    public Integer call() throws Exception {
      faults().kill(node, wipeImages);
      return 0;
    }
  }

  @Command(
      name = "cut",
      mixinStandardHelpOptions = true,
      description =
          "Cut a node off the network: its link on the cluster's bridge goes down, its processes"
              + " run on. `cohort cluster join NODE` undoes it.")
  int cut(@Parameters(paramLabel = "NODE", description = "n1, n2, ...") String node)
      throws Exception {
    faults().cut(node);
    return 0;
  }

  @Command(
      name = "join",
      mixinStandardHelpOptions = true,
      description = "Bring a node cut off (`cohort cluster cut NODE`) back onto the network.")
  int join(@Parameters(paramLabel = "NODE", description = "n1, n2, ...") String node)
      throws Exception {
    faults().join(node);
    return 0;
  }

  @Command(
      name = "down",
      mixinStandardHelpOptions = true,
      description =
          "Kill the cluster's running jobs, stop its daemons, remove its namespaces "
              + "and bridge. Its catalog of jobs and checkpoints is kept.")
  static final class Down implements Callable<Integer> {
    @Override
    public Integer call() throws Exception {
      new EmulatedCluster(Embedded.Settings.fromEnvironment().home(), System.err).down();
      return 0;
    }
  }
}
