package io.cohort.cli;

import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.OutputStream;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "logs",
    mixinStandardHelpOptions = true,
    description = {
      "Print a job's output across restarts: its stdout and stderr interleaved as they were "
          + "written, all on stdout (--stdout or --stderr for one of them).",
      "A restart from an older checkpoint rolls both back: what the job wrote after it is kept "
          + "beside its logs (FILE.after-CKPT-TIME), not shown here."
    })
final class LogsCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "JOB", description = "job id")
  String job;

  @Option(
      names = {"-f", "--follow"},
      description = "keep printing new output until the job " + "stops running")
  boolean follow;

  @ArgGroup(exclusive = true)
  Only only;

  /** One stream, if asked. */
  static final class Only {
    @Option(names = "--stdout", description = "only the job's standard output")
    boolean stdout;

    @Option(names = "--stderr", description = "only the job's standard error")
    boolean stderr;
  }

  @Override
  public Integer call() {
    OutputStream stream =
        only == null
            ? OutputStream.OUTPUT_STREAM_UNSPECIFIED
            : only.stdout ? OutputStream.OUTPUT_STREAM_STDOUT : OutputStream.OUTPUT_STREAM_STDERR;
    try (Cli cli = new Cli(connection, CohortGrpc.getStreamOutputMethod())) {
      if (follow) {
        cli.follow(job, 0, stream, false);
        return 0;
      }
      cli.print(cli.stream(job, 0, stream, false), false);
      cli.out.flush();
      return 0;
    }
  }
}
