package io.cohort.cli;

import io.cohort.proto.v1.KillJobRequest;
import io.cohort.proto.v1.KillJobResponse;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(
    name = "kill",
    mixinStandardHelpOptions = true,
    description = "End a running job and every process of it (its checkpoints stay).")
final class KillCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "JOB", description = "job id")
  String job;

  @Override
  public Integer call() {
    try (Cli cli = Cli.forChange(connection)) {
      KillJobResponse r = cli.call(60).killJob(KillJobRequest.newBuilder().setJobId(job).build());
      cli.err.printf("cohort: job %s killed%n", job);
      r.getWarningsList().forEach(w -> cli.err.println("cohort: warning: " + w));
      return 0;
    }
  }
}
