package io.cohort.cli;

import io.cohort.proto.v1.CohortGrpc;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(
    name = "wait",
    mixinStandardHelpOptions = true,
    description = {
      "Wait until a job is no longer running and exit with its exit status.",
      "Exit 75 if a checkpoint stopped it, 137 if it was killed, 70 if it was lost."
    })
final class WaitCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "JOB", description = "job id")
  String job;

  @Override
  public Integer call() throws Exception {
    try (Cli cli = new Cli(connection, CohortGrpc.getWatchJobMethod())) {
      return cli.await(job);
    }
  }
}
