package io.cohort.cli;

import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.JobEvent;
import io.cohort.proto.v1.JobInfo;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.Iterator;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "watch",
    mixinStandardHelpOptions = true,
    description = {
      "Print a job's state, then a line each time it changes (state, "
          + "incarnation, latest checkpoint, nodes), until it has ended (exited, killed, lost) "
          + "or Ctrl-C. A stopped job may be restarted: watching goes on."
    })
final class WatchCommand implements Callable<Integer> {
  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("HH:mm:ss").withZone(ZoneId.systemDefault());

  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "JOB", description = "job id")
  String job;

  @Option(names = "--json", description = "one JSON object (a JobEvent) per line")
  boolean json;

  @Override
  public Integer call() {
    try (Cli cli = new Cli(connection, CohortGrpc.getWatchJobMethod())) {
      Iterator<JobEvent> events = cli.watch(job);
      while (events.hasNext()) {
        JobEvent e = events.next();
        if (json) {
          cli.out.println(ProtoJson.print(e).replaceAll("\\s*\\n\\s*", " "));
        } else {
          JobInfo j = e.getJob();
          cli.out.printf(
              "%s job %s %s, incarnation %d, on %s, latest checkpoint %s%n",
              TIME.format(Instant.ofEpochMilli(e.getSeenUnixMs())),
              j.getJobId(),
              Cli.state(j),
              j.getIncarnation(),
              j.getVhostsList().stream().map(PsCommand::placement).collect(Collectors.joining(",")),
              j.getLatestCheckpoint().isEmpty() ? "none" : j.getLatestCheckpoint());
        }
        cli.out.flush();
      }
      return 0;
    }
  }
}
