package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.ImageCopy;
import io.cohort.proto.v1.ImageCopyState;
import io.cohort.proto.v1.ImagePolicy;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.ImportImageResponse;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.Protection;
import io.cohort.proto.v1.VhostPlacement;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Partner copies (SCR's Partner scheme): after a checkpoint is committed, each vhost's image is
 * copied to another node than the one that wrote it, so that losing any one node loses no
 * checkpoint. In the background, one copy at a time and at most at the configured rate, so neither
 * the checkpoint nor the job waits for it; the partner's agent pulls the image from the writer's
 * (ImportImage) and verifies it against the manifest digest of the commit record before it counts.
 *
 * <p>The plan (which node copies what) is written into the checkpoint's record before the copies
 * start, and each copy's outcome when it ends, so a coordinator that restarts finds the copies
 * still to make ({@link #resumeAll}); so does the registration of a node, as a copy waits while the
 * image's node is down. The partner of a vhost's image is the next node after the vhost's own in
 * name order that is up, not declared dead, and has another image store; after a failed copy, the
 * next such node not yet tried.
 */
final class PartnerCopies implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(PartnerCopies.class);
  static final String PARTNER = "partner";

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final NodeLossConfig config;
  private final Clock clock;
  private final ExecutorService copier =
      Executors.newSingleThreadExecutor(
          r -> {
            Thread t = new Thread(r, "cohort-partner-copies");
            t.setDaemon(true);
            return t;
          });

  /** Checkpoints queued or being copied (each is queued once). */
  private final Set<String> queued = ConcurrentHashMap.newKeySet();

  PartnerCopies(Catalog catalog, AgentDirectory agents, NodeLossConfig config, Clock clock) {
    this.catalog = catalog;
    this.agents = agents;
    this.config = config;
    this.clock = clock;
  }

  /**
   * A checkpoint was just committed: plans its copies into its record (so its protection is known
   * from now on) and queues them. Returns the record as planned.
   */
  CheckpointInfo afterCommit(CheckpointInfo c) {
    ImagePolicy policy = policyOf(c.getCheckpointId());
    Optional<CheckpointInfo> planned =
        catalog.updateCheckpoint(c.getCheckpointId(), now -> plan(now, policy));
    if (planned.isPresent()
        && planned.get().getProtection() == Protection.PROTECTION_PARTNER_COPYING) {
      queue(c.getCheckpointId());
    }
    return planned.orElse(c);
  }

  /**
   * Plans and queues every checkpoint whose protection is not settled (coordinator start, node
   * registration).
   */
  void resumeAll() {
    for (CheckpointInfo c : catalog.checkpoints("")) {
      Protection p = c.getProtection();
      if (p == Protection.PROTECTION_UNSPECIFIED || p == Protection.PROTECTION_PARTNER_COPYING) {
        queue(c.getCheckpointId());
      }
    }
  }

  private void queue(String ckpt) {
    if (queued.add(ckpt)) {
      copier.execute(
          () -> {
            queued.remove(ckpt);
            try {
              run(ckpt);
            } catch (RuntimeException e) {
              log.warn("{}: partner copies: {}", ckpt, e.getMessage());
            }
          });
    }
  }

  /** Plans the missing copies of a checkpoint and makes them, one after the other. */
  private void run(String ckpt) {
    ImagePolicy policy = policyOf(ckpt);
    Optional<CheckpointInfo> planned = catalog.updateCheckpoint(ckpt, c -> plan(c, policy));
    if (planned.isEmpty()) {
      return; // removed meanwhile
    }
    Set<String> under = new java.util.HashSet<>();
    for (ImageCopy k : planned.get().getCopiesList()) {
      if (k.getState() == ImageCopyState.IMAGE_COPY_STATE_COPYING) {
        under.add(k.getVhostId() + "@" + k.getNode());
        copy(planned.get(), k);
      }
    }
    catalog
        .updateCheckpoint(ckpt, c -> withProtection(plan(c, policy), policy))
        .ifPresent(
            c -> {
              // A copy that failed has another partner now: make that one too. (One that waits
              // for a node that is down stays planned until the node registers.)
              if (c.getCopiesList().stream()
                  .anyMatch(
                      k ->
                          k.getState() == ImageCopyState.IMAGE_COPY_STATE_COPYING
                              && !under.contains(k.getVhostId() + "@" + k.getNode()))) {
                queue(ckpt);
              } else {
                log.info("{}: {}", ckpt, describe(c));
              }
            });
  }

  private ImagePolicy policyOf(String ckpt) {
    try {
      JobRecord job = catalog.job(io.cohort.common.Ids.jobOfCheckpoint(ckpt));
      ImagePolicy p = job.getInfo().getSpec().getImagePolicy();
      return p == ImagePolicy.IMAGE_POLICY_UNSPECIFIED ? config.imagePolicy() : p;
    } catch (CohortException e) {
      return config.imagePolicy();
    }
  }

  /** One copy: the partner pulls the image from the node that wrote it and verifies it. */
  private void copy(CheckpointInfo c, ImageCopy k) {
    String vhost = k.getVhostId();
    String source = nodeOf(c, vhost);
    if (!agents.isUsable(source) || !agents.isUsable(k.getNode())) {
      log.info(
          "{}: copy of {} to {} waits: {} is down",
          c.getCheckpointId(),
          vhost,
          k.getNode(),
          agents.isUsable(source) ? k.getNode() : source);
      return; // still COPYING: resumed when the node registers again
    }
    long t0 = clock.millis();
    ImageCopy.Builder done = k.toBuilder();
    try {
      ImportImageResponse r =
          agents
              .agent(k.getNode())
              .importImage(
                  ImportImageRequest.newBuilder()
                      .setCheckpointId(c.getCheckpointId())
                      .setVhostId(vhost)
                      .setSourceAddress(agents.address(source))
                      .setManifestSha256(c.getManifestSha256OrDefault(vhost, ""))
                      .setMaxBytesPerSecond(config.copyBytesPerSecond())
                      .build());
      done.setState(ImageCopyState.IMAGE_COPY_STATE_COMPLETE)
          .setBytes(r.getBytes())
          .setCopyMs(clock.millis() - t0)
          .setCompletedUnixMs(clock.millis());
    } catch (CohortException e) {
      done.setState(ImageCopyState.IMAGE_COPY_STATE_FAILED).setError(e.getMessage());
      log.warn(
          "{}: copy of {} to {} failed: {}",
          c.getCheckpointId(),
          vhost,
          k.getNode(),
          e.getMessage());
    }
    ImageCopy result = done.build();
    Optional<CheckpointInfo> saved =
        catalog.updateCheckpoint(c.getCheckpointId(), now -> replace(now, k, result));
    if (saved.isEmpty() && result.getState() == ImageCopyState.IMAGE_COPY_STATE_COMPLETE) {
      deleteQuietly(c.getCheckpointId(), vhost, k.getNode()); // removed while it was copied
    }
  }

  /**
   * The record with a partner copy planned (state COPYING) for every vhost that has none complete
   * or under way and a node to copy to; unchanged for the policy none.
   */
  CheckpointInfo plan(CheckpointInfo c, ImagePolicy policy) {
    if (policy != ImagePolicy.IMAGE_POLICY_PARTNER) {
      return withProtection(c, policy);
    }
    CheckpointInfo.Builder b = c.toBuilder();
    for (VhostPlacement v : c.getVhostsList()) {
      List<ImageCopy> mine =
          c.getCopiesList().stream()
              .filter(k -> k.getVhostId().equals(v.getVhostId()) && k.getReason().equals(PARTNER))
              .toList();
      boolean covered =
          mine.stream().anyMatch(k -> k.getState() != ImageCopyState.IMAGE_COPY_STATE_FAILED);
      if (covered || sharedStore(c, v)) {
        continue;
      }
      List<String> tried = mine.stream().map(ImageCopy::getNode).toList();
      partnerOf(c, v, tried)
          .ifPresent(
              n ->
                  b.addCopies(
                      ImageCopy.newBuilder()
                          .setVhostId(v.getVhostId())
                          .setNode(n)
                          .setImageStore(agents.imageStore(n))
                          .setState(ImageCopyState.IMAGE_COPY_STATE_COPYING)
                          .setReason(PARTNER)));
    }
    return withProtection(b.build(), policy);
  }

  /** The next usable node after the vhost's own, in name order, with another image store. */
  private Optional<String> partnerOf(CheckpointInfo c, VhostPlacement v, List<String> tried) {
    String store = c.getImageStoreOrDefault(v.getVhostId(), "");
    List<String> ring = new ArrayList<>(agents.nodes());
    int at = Math.max(0, ring.indexOf(v.getNode()));
    for (int i = 1; i <= ring.size(); i++) {
      String n = ring.get((at + i) % ring.size());
      if (!n.equals(v.getNode())
          && !tried.contains(n)
          && agents.isUsable(n)
          && (store.isEmpty() || !store.equals(agents.imageStore(n)))) {
        return Optional.of(n);
      }
    }
    return Optional.empty();
  }

  /** The vhost's image is in a store that another node shares: no one node holds it alone. */
  private boolean sharedStore(CheckpointInfo c, VhostPlacement v) {
    String store = c.getImageStoreOrDefault(v.getVhostId(), "");
    return !store.isEmpty()
        && agents.nodes().stream()
            .anyMatch(n -> !n.equals(v.getNode()) && store.equals(agents.imageStore(n)));
  }

  /** The record's protection from its copies. */
  CheckpointInfo withProtection(CheckpointInfo c, ImagePolicy policy) {
    if (policy != ImagePolicy.IMAGE_POLICY_PARTNER) {
      return c.toBuilder()
          .setProtection(Protection.PROTECTION_LOCAL_ONLY)
          .setProtectionDetail("image policy none")
          .build();
    }
    int shared = 0;
    int complete = 0;
    int copying = 0;
    List<String> unprotected = new ArrayList<>();
    for (VhostPlacement v : c.getVhostsList()) {
      List<ImageCopy> mine =
          c.getCopiesList().stream().filter(k -> k.getVhostId().equals(v.getVhostId())).toList();
      if (sharedStore(c, v)) {
        shared++;
      } else if (mine.stream()
          .anyMatch(k -> k.getState() == ImageCopyState.IMAGE_COPY_STATE_COMPLETE)) {
        complete++;
      } else if (mine.stream()
          .anyMatch(k -> k.getState() == ImageCopyState.IMAGE_COPY_STATE_COPYING)) {
        copying++;
      } else {
        unprotected.add(
            v.getVhostId()
                + ": "
                + mine.stream()
                    .filter(k -> k.getState() == ImageCopyState.IMAGE_COPY_STATE_FAILED)
                    .map(k -> "copy to " + k.getNode() + " failed (" + k.getError() + ")")
                    .reduce((a, b2) -> a + "; " + b2)
                    .orElse("no other node to copy to"));
      }
    }
    CheckpointInfo.Builder b = c.toBuilder().clearProtectionDetail();
    int n = c.getVhostsCount();
    if (shared == n) {
      b.setProtection(Protection.PROTECTION_SHARED_STORE);
    } else if (shared + complete == n) {
      b.setProtection(Protection.PROTECTION_PARTNER_COMPLETE);
    } else if (unprotected.isEmpty()) {
      b.setProtection(Protection.PROTECTION_PARTNER_COPYING)
          .setProtectionDetail(String.format("%d of %d images copied", shared + complete, n));
    } else {
      b.setProtection(Protection.PROTECTION_LOCAL_ONLY)
          .setProtectionDetail(String.join("; ", unprotected));
    }
    return b.build();
  }

  static String describe(CheckpointInfo c) {
    return switch (c.getProtection()) {
      case PROTECTION_PARTNER_COMPLETE -> "partner copies complete";
      case PROTECTION_SHARED_STORE -> "in a shared image store";
      case PROTECTION_PARTNER_COPYING ->
          "partner copies under way (" + c.getProtectionDetail() + ")";
      case PROTECTION_LOCAL_ONLY -> "local only (" + c.getProtectionDetail() + ")";
      default -> "not yet known";
    };
  }

  private static CheckpointInfo replace(CheckpointInfo c, ImageCopy old, ImageCopy now) {
    CheckpointInfo.Builder b = c.toBuilder().clearCopies();
    for (ImageCopy k : c.getCopiesList()) {
      b.addCopies(
          k.getVhostId().equals(old.getVhostId()) && k.getNode().equals(old.getNode()) ? now : k);
    }
    return b.build();
  }

  private static String nodeOf(CheckpointInfo c, String vhostId) {
    return c.getVhostsList().stream()
        .filter(v -> v.getVhostId().equals(vhostId))
        .map(VhostPlacement::getNode)
        .findFirst()
        .orElseThrow();
  }

  private void deleteQuietly(String ckpt, String vhost, String node) {
    try {
      agents.agent(node).deleteImage(ckpt, vhost);
    } catch (RuntimeException e) {
      log.info("{}: copy of {} on {} left for the sweep: {}", ckpt, vhost, node, e.getMessage());
    }
  }

  @Override
  public void close() {
    copier.shutdownNow();
    Coordinator.awaitQuietly(copier);
  }
}
