package io.cohort.cli;

import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.RemoveCheckpointRequest;
import io.cohort.proto.v1.RemoveCheckpointResponse;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(
    name = "rm",
    mixinStandardHelpOptions = true,
    description = "Delete a checkpoint and its images (every copy, on every node).")
final class RmCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Parameters(paramLabel = "CKPT", description = "checkpoint id (JOB.EPOCH)")
  String checkpoint;

  @Override
  public Integer call() {
    try (Cli cli = Cli.forChange(connection, CohortGrpc.getRemoveCheckpointMethod())) {
      RemoveCheckpointResponse r =
          cli.call(300)
              .removeCheckpoint(
                  RemoveCheckpointRequest.newBuilder().setCheckpointId(checkpoint).build());
      cli.err.printf("cohort: checkpoint %s removed%n", checkpoint);
      r.getWarningsList().forEach(w -> cli.err.println("cohort: warning: " + w));
      return 0;
    }
  }
}
