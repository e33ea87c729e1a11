package io.cohort.cli;

import io.cohort.common.JobSignals;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.KillJobRequest;
import io.cohort.proto.v1.KillJobResponse;
import io.cohort.proto.v1.SignalJobRequest;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "kill",
    mixinStandardHelpOptions = true,
    description = {
      "End a running job and every process of it (its checkpoints stay).",
      "With --signal, only send a signal to the job's command instead, as `kill -SIG` would to "
          + "mpirun: mpirun passes SIGUSR1 and SIGUSR2 on to every rank (e.g. to make a code write "
          + "its own restart file) and ends the job on SIGTERM, SIGINT or SIGHUP. The job stays "
          + "Cohort's: it is checkpointed, restarted and ended as before."
    })
final class KillCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "JOB", description = "job id")
  String job;

  @Option(
      names = {"-s", "--signal"},
      paramLabel = "SIG",
      description =
          "a signal to send (name, SIGNAME or number): "
              + "HUP, INT, QUIT, USR1, USR2, ALRM or TERM. KILL is refused (kill without --signal "
              + "ends the job), and so are STOP, TSTP and CONT (use `cohort checkpoint --stop`).")
  String signal;

  @Override
  public Integer call() {
    if (signal != null) {
      JobSignals.parse(signal); // a clear error before anything starts
    }
    try (Cli cli =
        Cli.forChange(
            connection,
            signal != null ? CohortGrpc.getSignalJobMethod() : CohortGrpc.getKillJobMethod())) {
      if (signal != null) {
        int n =
            cli.call(60)
                .signalJob(SignalJobRequest.newBuilder().setJobId(job).setSignal(signal).build())
                .getSignal();
        cli.err.printf("cohort: signal %d sent to job %s%n", n, job);
        return 0;
      }
      KillJobResponse r = cli.call(60).killJob(KillJobRequest.newBuilder().setJobId(job).build());
      cli.err.printf("cohort: job %s killed%n", job);
      r.getWarningsList().forEach(w -> cli.err.println("cohort: warning: " + w));
      return 0;
    }
  }
}
