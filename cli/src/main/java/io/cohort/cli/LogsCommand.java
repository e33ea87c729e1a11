package io.cohort.cli;

import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.StreamOutputRequest;
import java.util.Iterator;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "logs",
    mixinStandardHelpOptions = true,
    description = "Print a job's output (stdout and stderr, across restarts).")
final class LogsCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "JOB", description = "job id")
  String job;

  @Option(
      names = {"-f", "--follow"},
      description = "keep printing new output until the job " + "stops running")
  boolean follow;

  @Override
  public Integer call() {
    try (Cli cli = new Cli(connection)) {
      if (follow) {
        cli.follow(job, 0);
        return 0;
      }
      Iterator<OutputChunk> it =
          cli.stub
              .withDeadlineAfter(10, TimeUnit.MINUTES)
              .streamOutput(StreamOutputRequest.newBuilder().setJobId(job).build());
      while (it.hasNext()) {
        OutputChunk c = it.next();
        cli.out.write(c.getData().toByteArray(), 0, c.getData().size());
      }
      cli.out.flush();
      return 0;
    }
  }
}
