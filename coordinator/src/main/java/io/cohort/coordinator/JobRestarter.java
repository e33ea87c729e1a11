package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.RestartResponse;
import io.cohort.proto.v1.RestoreVhostRequest;
import io.cohort.proto.v1.RestoreVhostResponse;
import io.cohort.proto.v1.VerifyImageRequest;
import io.cohort.proto.v1.VhostPlacement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Restarts a job from a checkpoint, under the job's lock: resolves the checkpoint, checks every
 * image (before a running incarnation is ended, with --replace), brings images to the nodes that
 * will restore them, restores every vhost, wires their network and records the new incarnation.
 * Nothing is ended before every image is known to be good where it is needed.
 */
final class JobRestarter {
  private static final Logger log = LoggerFactory.getLogger(JobRestarter.class);

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final JobReconciler reconciler;
  private final JobVhosts vhosts;
  private final Clock clock;

  JobRestarter(
      Catalog catalog,
      AgentDirectory agents,
      JobReconciler reconciler,
      JobVhosts vhosts,
      Clock clock) {
    this.catalog = catalog;
    this.agents = agents;
    this.reconciler = reconciler;
    this.vhosts = vhosts;
    this.clock = clock;
  }

  /** Restarts a job from a checkpoint id, or from the latest checkpoint of a job id. */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  RestartResponse restart(String target, boolean replace, List<String> nodes) {
    long t0 = clock.millis();
    String jobId = Ids.isCheckpoint(target) ? Ids.jobOfCheckpoint(target) : target;
    if (!Ids.isJob(jobId)) {
      throw CohortException.invalid(
          "'%s' is neither a job id nor a checkpoint id (JOB.EPOCH)", target);
    }
    try (Catalog.Hold hold = catalog.lockJob(jobId)) {
      CheckpointInfo ckpt = resolve(target);
      JobRecord rec = reconciler.reconcile(jobId);
      if (rec.getVhostsToEndCount() > 0) {
        VhostPlacement v = rec.getVhostsToEnd(0);
        throw new CohortException(
            CohortException.Kind.UNAVAILABLE,
            String.format(
                "job %s cannot "
                    + "restart yet: its vhost %s on node %s, left running when a --stop checkpoint "
                    + "failed, must end first and that node is down; restart when it is back (`cohort "
                    + "nodes`)",
                jobId, v.getVhostId(), v.getNode()));
      }
      boolean running = rec.getInfo().getState() == JobState.JOB_STATE_RUNNING;
      if (running && !replace) {
        throw CohortException.precondition(
            "job %s is running; to restart it from %s, end the "
                + "running incarnation first (`cohort kill %s`) or add --replace",
            jobId, ckpt.getCheckpointId(), jobId);
      }
      // With --replace, check every image before the running incarnation is ended, so a
      // damaged checkpoint never costs a running job. (RestoreVhost verifies again itself,
      // before it changes anything: without a running job there is nothing to lose.)
      for (VhostPlacement v : running ? ckpt.getVhostsList() : List.<VhostPlacement>of()) {
        agents
            .agent(v.getNode())
            .verify(
                VerifyImageRequest.newBuilder()
                    .setCheckpointId(ckpt.getCheckpointId())
                    .setVhostId(v.getVhostId())
                    .setManifestSha256(ckpt.getManifestSha256OrDefault(v.getVhostId(), ""))
                    .build());
      }
      List<String> targets = targets(ckpt, rec.getInfo(), nodes);
      long transferred = 0;
      for (int i = 0; i < ckpt.getVhostsCount(); i++) {
        VhostPlacement v = ckpt.getVhosts(i);
        String store = ckpt.getImageStoreOrDefault(v.getVhostId(), "");
        boolean inPlace =
            targets.get(i).equals(v.getNode())
                || (!store.isEmpty() && store.equals(agents.imageStore(targets.get(i))));
        if (!inPlace) {
          // The image is on another node: the target's agent fetches and verifies it (before
          // anything is ended, so a failed transfer changes nothing).
          agents.agent(v.getNode()); // UNAVAILABLE with the reason if that node is down
          transferred +=
              agents
                  .agent(targets.get(i))
                  .importImage(
                      ImportImageRequest.newBuilder()
                          .setCheckpointId(ckpt.getCheckpointId())
                          .setVhostId(v.getVhostId())
                          .setSourceAddress(agents.address(v.getNode()))
                          .setManifestSha256(ckpt.getManifestSha256OrDefault(v.getVhostId(), ""))
                          .build())
                  .getBytes();
        }
      }
      if (running) {
        vhosts.kill(rec.getInfo());
      }
      List<VhostPlacement> placed = new ArrayList<>();
      long offset = 0;
      long inflight = 0;
      try {
        for (int i = 0; i < ckpt.getVhostsCount(); i++) {
          VhostPlacement v = ckpt.getVhosts(i);
          AgentClient agent = agents.agent(targets.get(i));
          RestoreVhostResponse r =
              agent.restore(
                  RestoreVhostRequest.newBuilder()
                      .setCheckpointId(ckpt.getCheckpointId())
                      .setVhostId(v.getVhostId())
                      .setManifestSha256(ckpt.getManifestSha256OrDefault(v.getVhostId(), ""))
                      .build());
          placed.add(r.getPlacement());
          inflight += r.getInflightPackets();
          if (placed.size() == 1) {
            offset = r.getOutputOffset();
          }
        }
        vhosts.configureNetwork(jobId, placed);
      } catch (RuntimeException e) {
        vhosts.killQuietly(placed);
        throw e;
      }
      JobInfo info =
          rec.getInfo().toBuilder()
              .setState(JobState.JOB_STATE_RUNNING)
              .setExitCode(0)
              .setExitSignal(0)
              .setIncarnation(rec.getInfo().getIncarnation() + 1)
              .clearVhosts()
              .addAllVhosts(placed)
              .build();
      catalog.saveJob(rec.toBuilder().setInfo(info).build());
      log.info(
          "job-{}: restarted from {} (incarnation {})",
          jobId,
          ckpt.getCheckpointId(),
          info.getIncarnation());
      return RestartResponse.newBuilder()
          .setJob(reconciler.reconcile(jobId).getInfo())
          .setCheckpointId(ckpt.getCheckpointId())
          .setOutputOffset(offset)
          .setRestartMs(clock.millis() - t0)
          .setInflightPackets(inflight)
          .setTransferredBytes(transferred)
          .build();
    }
  }

  /**
   * The node for each vhost of the checkpoint: spread over the nodes asked for (known and up;
   * {@link Placement} has the rule), or the nodes that took the checkpoint.
   */
  private List<String> targets(CheckpointInfo ckpt, JobInfo job, List<String> nodes) {
    if (nodes.isEmpty()) {
      return ckpt.getVhostsList().stream().map(VhostPlacement::getNode).toList();
    }
    Map<String, Integer> running = vhosts.runningByNode();
    if (job.getState() == JobState.JOB_STATE_RUNNING) { // --replace: its vhosts make way
      job.getVhostsList().forEach(v -> running.merge(v.getNode(), -1, Integer::sum));
    }
    Placement p = Placement.onNodes(nodes, ckpt.getVhostsCount(), running, agents::agent);
    vhosts.requireOverlay(p.nodes());
    if (!p.unused().isEmpty()) {
      log.info(
          "job-{}: restart from {} leaves {} unused",
          job.getJobId(),
          ckpt.getCheckpointId(),
          String.join(",", p.unused()));
    }
    return p.nodes();
  }

  private CheckpointInfo resolve(String target) {
    if (Ids.isCheckpoint(target)) {
      return catalog
          .checkpoint(target)
          .orElseThrow(
              () ->
                  CohortException.notFound(
                      "checkpoint %s does not exist (see `cohort checkpoints`)", target));
    }
    if (Ids.isJob(target)) {
      catalog.job(target);
      List<CheckpointInfo> all = catalog.checkpoints(target);
      if (all.isEmpty()) {
        throw CohortException.notFound(
            "job %s has no checkpoint to restart from; take one with " + "`cohort checkpoint %s`",
            target, target);
      }
      return all.get(all.size() - 1);
    }
    throw CohortException.invalid(
        "'%s' is neither a job id nor a checkpoint id (JOB.EPOCH)", target);
  }
}
