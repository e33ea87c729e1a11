package io.cohort.cli;

import io.cohort.proto.v1.KillJobRequest;
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
      cli.call(60).killJob(KillJobRequest.newBuilder().setJobId(job).build());
      cli.err.printf("cohort: job %s killed%n", job);
      return 0;
    }
  }
}
