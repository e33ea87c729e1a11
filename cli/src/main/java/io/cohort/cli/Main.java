package io.cohort.cli;

import io.grpc.StatusRuntimeException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The `cohort` command line. */
@Command(
    name = "cohort",
    mixinStandardHelpOptions = true,
    version = "cohort 0.1.0",
    description = "Checkpoint and restart MPI jobs, unchanged, with CRIU.",
    subcommands = {
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
      DoctorCommand.class,
      CommandLine.HelpCommand.class
    },
    footer = {
      "",
      "Repository commands (run from a Cohort checkout as ./cohort):",
      "  setup   install what is missing (Open MPI, CRIU 4.2+, mpi.jar), build",
      "  demo    setup, then run an MPI job, checkpoint, stop and restart it",
      "  test    setup, then run the native tests and the suite (mvn verify)",
      "",
      "Environment: COHORT_HOME (state, default /var/lib/cohort), COHORT_CRIU",
      "(default /opt/cohort/bin/criu), COHORT_NATIVE_DIR (cohort-init, cohort-rsh),",
      "COHORT_COORDINATOR (a coordinator daemon), COHORT_LOG (log level).",
      "Without a coordinator daemon (--coordinator, $COHORT_COORDINATOR, or a local",
      "cluster from `cohort cluster up`),",
      "jobs run in the embedded single-node mode: no daemon needs to be started."
    })
public final class Main implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.err);
  }

  public static void main(String[] args) {
    CommandLine cl = new CommandLine(new Main());
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> {
          if (ex instanceof StatusRuntimeException sre) {
            System.err.println("cohort: " + Cli.message(sre));
            return 1;
          }
          if (ex instanceof io.cohort.common.CohortException ce) {
            System.err.println("cohort: " + ce.getMessage());
            return 1;
          }
          throw ex;
        });
    System.exit(cl.execute(args));
  }
}
