package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.ImageCopy;
import io.cohort.proto.v1.ImageCopyState;
import io.cohort.proto.v1.ImageSource;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobNetworkPlan;
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
import java.util.Optional;
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
  private final JobNetworks networks;
  private final Clock clock;
  private final ImageHolders holders;

  JobRestarter(
      Catalog catalog,
      AgentDirectory agents,
      JobReconciler reconciler,
      JobVhosts vhosts,
      JobNetworks networks,
      Clock clock) {
    this.networks = networks;
    this.catalog = catalog;
    this.agents = agents;
    this.reconciler = reconciler;
    this.vhosts = vhosts;
    this.clock = clock;
    this.holders = new ImageHolders(agents);
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
      StringBuilder note = new StringBuilder();
      CheckpointInfo found = resolve(target, note);
      JobRecord rec = reconciler.reconcile(jobId);
      // Signed, this job's, of its owner: nothing below acts on a record edited on disk.
      CheckpointInfo ckpt = catalog.requireTrusted(found, rec.getInfo());
      // A vhost left to end on a node that is down may still run there (the node may be only
      // cut off): nothing takes its place until the node is back or declared dead.
      vhosts.requireNoneLeft(rec);
      boolean running = rec.getInfo().getState() == JobState.JOB_STATE_RUNNING;
      if (running && !replace) {
        throw CohortException.precondition(
            "job %s is running; to restart it from %s, end the "
                + "running incarnation first (`cohort kill %s`) or add --replace",
            jobId, ckpt.getCheckpointId(), jobId);
      }
      if (running) {
        vhosts.requireNoneOnDownNodes(jobId, rec.getInfo().getVhostsList());
      }
      List<String> targets = targets(ckpt, rec.getInfo(), nodes);
      List<String> addresses =
          ckpt.getVhostsList().stream()
              .map(VhostPlacement::getAddress)
              .filter(a -> !a.isEmpty())
              .toList();
      // Before anything changes: the job's own block (its images hold its addresses), with this
      // incarnation's VXLAN id.
      JobNetworkPlan plan =
          addresses.isEmpty()
              ? JobNetworkPlan.getDefaultInstance()
              : networks.renew(jobId, addresses);
      List<ImageHolders.Source> sources = new ArrayList<>();
      for (int i = 0; i < ckpt.getVhostsCount(); i++) {
        String vhost = ckpt.getVhosts(i).getVhostId();
        sources.add(
            holders
                .source(ckpt, vhost, targets.get(i))
                .orElseThrow(
                    () ->
                        new CohortException(
                            CohortException.Kind.UNAVAILABLE,
                            "cannot restart from "
                                + ckpt.getCheckpointId()
                                + ": "
                                + holders
                                    .unavailable(ckpt)
                                    .orElse("its image of " + vhost + " is nowhere")
                                + newestUsable(jobId)
                                    .map(c -> "; restart from " + c + " instead")
                                    .orElse(""))));
      }
      // With --replace, check every image where it will be taken from before the running
      // incarnation is ended, so a damaged checkpoint never costs a running job. (RestoreVhost
      // and ImportImage verify again themselves, before they change anything.)
      for (int i = 0; running && i < ckpt.getVhostsCount(); i++) {
        String vhost = ckpt.getVhosts(i).getVhostId();
        agents
            .agent(sources.get(i).holder().node())
            .verify(
                VerifyImageRequest.newBuilder()
                    .setCheckpointId(ckpt.getCheckpointId())
                    .setVhostId(vhost)
                    .setManifestSha256(ckpt.getManifestSha256OrDefault(vhost, ""))
                    .setOwner(rec.getInfo().getOwner())
                    .build());
      }
      long transferred = 0;
      List<ImageSource> reported = new ArrayList<>();
      for (int i = 0; i < ckpt.getVhostsCount(); i++) {
        transferred +=
            bring(ckpt, ckpt.getVhosts(i).getVhostId(), targets.get(i), sources.get(i), reported);
      }
      if (running) {
        List<VhostPlacement> left = vhosts.endOrLeave(rec.getInfo().getVhostsList());
        rec = rec.toBuilder().addAllVhostsToEnd(left).build();
        if (left.stream().anyMatch(v -> !agents.isDead(v.getNode()))) {
          // Its node went silent since the check above: the rest of the incarnation is ended.
          rec =
              reconciler.endLeftVhosts(
                  rec.toBuilder()
                      .setInfo(rec.getInfo().toBuilder().setState(JobState.JOB_STATE_KILLED))
                      .build());
          catalog.saveJob(rec);
          vhosts.requireNoneLeft(rec);
        }
      }
      String networkKey = JobVhosts.newNetworkKey();
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
                      .setPlan(plan)
                      .setOwner(rec.getInfo().getOwner()) // root's when unset
                      .build());
          placed.add(r.getPlacement());
          inflight += r.getInflightPackets();
          if (placed.size() == 1) {
            offset = r.getOutputOffset();
          }
        }
        vhosts.configureNetwork(jobId, placed, networkKey, plan);
        vhosts.releaseRestored(jobId, placed);
      } catch (RuntimeException e) {
        vhosts.killQuietly(placed);
        // The running incarnation (if any) is ended: record that, and what is left to end.
        if (running) {
          catalog.saveJob(
              rec.toBuilder()
                  .setInfo(rec.getInfo().toBuilder().setState(JobState.JOB_STATE_KILLED))
                  .build());
        }
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
      catalog.saveJob(rec.toBuilder().setInfo(info).setNetworkKey(networkKey).build());
      log.info(
          "job-{}: restarted from {} (incarnation {}){}",
          jobId,
          ckpt.getCheckpointId(),
          info.getIncarnation(),
          note.isEmpty() ? "" : ": " + note);
      return RestartResponse.newBuilder()
          .setJob(reconciler.reconcile(jobId).getInfo())
          .setCheckpointId(ckpt.getCheckpointId())
          .setOutputOffset(offset)
          .setRestartMs(clock.millis() - t0)
          .setInflightPackets(inflight)
          .setTransferredBytes(transferred)
          .addAllSources(reported)
          .setNote(note.toString())
          .build();
    }
  }

  /**
   * Brings one vhost's image to its target node unless it is there already; the target's agent
   * fetches and verifies it (before anything is ended, so a failed transfer changes nothing), and
   * the copy is recorded with the checkpoint. Returns the bytes brought.
   */
  private long bring(
      CheckpointInfo ckpt,
      String vhost,
      String target,
      ImageHolders.Source source,
      List<ImageSource> reported) {
    ImageSource.Builder r =
        ImageSource.newBuilder()
            .setVhostId(vhost)
            .setNode(target)
            .setFromNode(source.holder().node())
            .setCopy(source.holder().copy());
    if (source.inPlace()) {
      reported.add(r.build());
      return 0;
    }
    long t0 = clock.millis();
    long bytes =
        agents
            .agent(target)
            .importImage(
                ImportImageRequest.newBuilder()
                    .setCheckpointId(ckpt.getCheckpointId())
                    .setVhostId(vhost)
                    .setSourceAddress(agents.address(source.holder().node()))
                    .setManifestSha256(ckpt.getManifestSha256OrDefault(vhost, ""))
                    .build())
            .getBytes();
    ImageCopy copy =
        ImageCopy.newBuilder()
            .setVhostId(vhost)
            .setNode(target)
            .setImageStore(agents.imageStore(target))
            .setState(ImageCopyState.IMAGE_COPY_STATE_COMPLETE)
            .setReason("restart")
            .setBytes(bytes)
            .setCopyMs(clock.millis() - t0)
            .setCompletedUnixMs(clock.millis())
            .build();
    catalog.updateCheckpoint(
        ckpt.getCheckpointId(),
        c ->
            c.getCopiesList().stream()
                    .anyMatch(k -> k.getVhostId().equals(vhost) && k.getNode().equals(target))
                ? c
                : c.toBuilder().addCopies(copy).build());
    reported.add(r.setBytes(bytes).build());
    return bytes;
  }

  /**
   * The node for each vhost of the checkpoint: spread over the nodes asked for (known and up;
   * {@link Placement} has the rule), or the nodes that took the checkpoint.
   */
  private List<String> targets(CheckpointInfo ckpt, JobInfo job, List<String> nodes) {
    if (nodes.isEmpty()) {
      for (VhostPlacement v : ckpt.getVhostsList()) {
        if (!agents.isUsable(v.getNode())) {
          throw new CohortException(
              CohortException.Kind.UNAVAILABLE,
              String.format(
                  "vhost %s was on node %s, which is %s: choose where to restart with --nodes "
                      + "(nodes up: %s)",
                  v.getVhostId(),
                  v.getNode(),
                  agents.isDead(v.getNode()) ? "declared dead" : "down",
                  String.join(",", agents.nodes().stream().filter(agents::isUsable).toList())));
        }
      }
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

  /**
   * The checkpoint to restart from: the one named, or the job's latest one whose images can all be
   * reached now; when that is not the latest, {@code note} says why.
   */
  private CheckpointInfo resolve(String target, StringBuilder note) {
    if (Ids.isCheckpoint(target)) {
      CheckpointInfo c =
          catalog
              .checkpoint(target)
              .orElseThrow(
                  () ->
                      CohortException.notFound(
                          "checkpoint %s does not exist (see `cohort checkpoints`)", target));
      if (!c.getCheckpointId().equals(target)) {
        throw CohortException.dataLoss(
            "the record of checkpoint %s is that of checkpoint %s, moved there; refusing to "
                + "restart from it",
            target, c.getCheckpointId());
      }
      return c;
    }
    if (Ids.isJob(target)) {
      catalog.job(target);
      List<CheckpointInfo> all = catalog.checkpoints(target);
      if (all.isEmpty()) {
        throw CohortException.notFound(
            "job %s has no checkpoint to restart from; take one with " + "`cohort checkpoint %s`",
            target, target);
      }
      CheckpointInfo latest = all.get(all.size() - 1);
      Optional<String> why = holders.unavailable(latest);
      if (why.isEmpty()) {
        return latest;
      }
      for (int i = all.size() - 2; i >= 0; i--) {
        if (holders.unavailable(all.get(i)).isEmpty()) {
          note.append(
              String.format(
                  "the latest checkpoint %s cannot be used: %s; restarting from %s, the newest "
                      + "checkpoint whose images are all available",
                  latest.getCheckpointId(), why.get(), all.get(i).getCheckpointId()));
          return all.get(i);
        }
      }
      return latest; // none usable: the restart says why
    }
    throw CohortException.invalid(
        "'%s' is neither a job id nor a checkpoint id (JOB.EPOCH)", target);
  }

  /** The newest checkpoint of a job whose images can all be reached now. */
  private Optional<String> newestUsable(String jobId) {
    List<CheckpointInfo> all = catalog.checkpoints(jobId);
    for (int i = all.size() - 1; i >= 0; i--) {
      if (holders.unavailable(all.get(i)).isEmpty()) {
        return Optional.of(all.get(i).getCheckpointId());
      }
    }
    return Optional.empty();
  }
}
