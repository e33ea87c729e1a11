package io.cohort.cli;

import io.grpc.StatusRuntimeException;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The `cohort` command line. */
@Command(
    name = "cohort",
    mixinStandardHelpOptions = true,
    version = "cohort 0.1.0",
    description = "Checkpoint and restart MPI jobs, unchanged, with CRIU.",
    footer = {
      "",
      "Repository commands (run from a Cohort checkout as ./cohort):",
      "  setup   install what is missing (Open MPI, CRIU 4.2+, mpi.jar), build",
      "  demo    setup, then run an MPI job, checkpoint, stop and restart it",
      "  test    setup, then run the native tests and the suite (mvn verify)",
      "",
      "Environment: COHORT_HOME (state, default /var/lib/cohort), COHORT_CRIU",
      "(default /opt/cohort/bin/criu), COHORT_NATIVE_DIR (cohort-init, cohort-rsh,",
      "cohort-tls-dial), COHORT_CA (the cluster CA's certificate, for a coordinator over TCP),",
      "COHORT_COORDINATOR (a coordinator daemon), COHORT_LOG (log level).",
      "Without a coordinator daemon (--coordinator, $COHORT_COORDINATOR, or a local",
      "cluster from `cohort cluster up`),",
      "jobs run in the embedded single-node mode: no daemon needs to be started."
    })
public final class Main implements Runnable {
  /** The subcommands, in the order `cohort --help` lists them. */
  static final List<Class<?>> COMMANDS =
      List.of(
          RunCommand.class,
          CheckpointCommand.class,
          RestartCommand.class,
          PsCommand.class,
          CheckpointsCommand.class,
          LogsCommand.class,
          WatchCommand.class,
          WaitCommand.class,
          KillCommand.class,
          RmCommand.class,
          NodesCommand.class,
          ClusterCommand.class,
          CoordinatorCommand.class,
          AgentCommand.class,
          CaCommand.class,
          DoctorCommand.class,
          CommandLine.HelpCommand.class);

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.err);
  }

  public static void main(String[] args) throws Exception {
    Callable<Integer> quick = QuickParse.parse(args);
    int rc;
    if (quick != null) {
      try {
        rc = quick.call();
      } catch (Exception e) {
        rc = failed(e);
      }
    } else {
      CommandLine cl = commandLine(args);
      cl.setExecutionExceptionHandler((ex, cmd, parsed) -> failed(ex));
      rc = cl.execute(args);
    }
    System.exit(rc);
  }

  /** The exit code of a command that failed: 1 with the message, or {@code e} itself. */
  private static int failed(Exception e) throws Exception {
    if (e instanceof StatusRuntimeException sre) {
      System.err.println("cohort: " + Cli.message(sre));
      return 1;
    }
    if (e instanceof io.cohort.common.CohortException ce) {
      System.err.println("cohort: " + ce.getMessage());
      return 1;
    }
    throw e;
  }

  /**
   * The command line for {@code args}. Picocli builds its model of a command by reflection over its
   * annotations (0.3 s of a 1 s `cohort ps` with all the subcommands; see also {@link QuickParse}):
   * a command line that starts with a subcommand's name gets that subcommand only, and parses
   * exactly as with all of them. Anything else (no subcommand, --help, `help`, a typo) gets all of
   * them, so that the usage, the help and picocli's suggestions list every command.
   */
  static CommandLine commandLine(String[] args) {
    CommandLine cl = new CommandLine(new Main());
    String first = args.length > 0 ? args[0] : "";
    for (Class<?> c : COMMANDS) {
      if (c.getAnnotation(Command.class).name().equals(first)) {
        return cl.addSubcommand(c);
      }
    }
    COMMANDS.forEach(cl::addSubcommand);
    return cl;
  }
}
