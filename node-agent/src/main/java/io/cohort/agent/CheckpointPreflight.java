package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.VhostRecord;
import java.util.List;

/**
 * The prepare phase of a checkpoint on this node: every vhost asked for is running, no process of a
 * non-root owner's vhost runs a set-id program or holds other credentials than its owner's ({@link
 * RunningTasks}), and the image store has room for their images (estimated from their resident
 * memory) and the configured reserve. A refusal here comes before any vhost is frozen.
 */
final class CheckpointPreflight {
  private final AgentConfig config;
  private final VhostRecords records;
  private final ImageStore images;

  CheckpointPreflight(AgentConfig config, VhostRecords records, ImageStore images) {
    this.config = config;
    this.records = records;
    this.images = images;
  }

  PrepareCheckpointResponse prepare(PrepareCheckpointRequest req) {
    long estimate = 0;
    for (String id : req.getVhostIdsList()) {
      VhostRecord rec = records.requireRunning(id, "checkpoint");
      List<Long> procs = ProcTree.of(rec.getPid()); // one walk for both
      RunningTasks.check(rec, procs);
      estimate += residentBytes(procs);
    }
    long free = images.freeBytes();
    if (free < estimate + config.minFreeBytes()) {
      throw new CohortException(
          CohortException.Kind.RESOURCE_EXHAUSTED,
          String.format(
              "not enough space for checkpoint %s on %s: %d MB free in %s, about %d MB needed; "
                  + "free some space (e.g. `cohort rm` old checkpoints)",
              req.getCheckpointId(),
              config.node(),
              free >> 20,
              config.imagesDir(),
              (estimate + config.minFreeBytes()) >> 20));
    }
    return PrepareCheckpointResponse.newBuilder()
        .setFreeBytes(free)
        .setEstimatedBytes(estimate)
        .build();
  }

  /** Resident memory of every process of the vhost (an estimate of its image size). */
  private static long residentBytes(List<Long> procs) {
    long total = 0;
    for (long pid : procs) {
      String statm = ProcTree.read(ProcTree.dir(pid).resolve("statm"));
      if (statm != null) { // else the process ended meanwhile
        total += Long.parseLong(statm.split(" ", 3)[1]) * 4096; // resident, in pages
      }
    }
    return total;
  }
}
