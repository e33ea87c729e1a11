package io.cohort.agent;

import io.cohort.common.CheckpointKey;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Configuration of a node agent. Defaults live in {@link #defaults}; every field is mirrored in
 * docs/configuration.md.
 *
 * @param node name of this node
 * @param home the agent's state directory (vhost records, output logs, images)
 * @param initBinary path of native/build/cohort-init
 * @param criuCommand how to run CRIU (argv prefix), e.g. [/opt/cohort/bin/criu]
 * @param launchTimeout how long a vhost may take to start its command
 * @param criuTimeout how long one CRIU dump or restore may take before it is killed
 * @param minFreeBytes free space the image store must keep after an image is written
 * @param vhostNetworking whether vhosts may get a veth, an address and routes in this agent's
 *     network namespace (daemons on nodes: yes; the embedded mode on a user's machine: no)
 * @param sharedImages an image directory shared with other nodes (e.g. on a cluster file system),
 *     used instead of {@code home/images}; null: none
 * @param decisionLease how long a dump waits for the coordinator's next word once the agent has
 *     answered, before the agent aborts it on its own; null: the time the coordinator says its
 *     phase may take ({@code decision_within_ms}) plus {@link #LEASE_MARGIN}
 * @param checkpointKey the cluster's checkpoint key, which signs the manifests of this agent's
 *     images and must have signed every manifest it trusts (see {@link SignedManifests}); null
 *     until {@link #withCheckpointKey} (the daemon loads it from its TLS directory)
 */
public record AgentConfig(
    String node,
    Path home,
    Path initBinary,
    List<String> criuCommand,
    Duration launchTimeout,
    Duration criuTimeout,
    long minFreeBytes,
    boolean vhostNetworking,
    Path sharedImages,
    Duration decisionLease,
    CheckpointKey checkpointKey) {

  /** Added to the coordinator's phase timeout for the default decision lease. */
  public static final Duration LEASE_MARGIN = Duration.ofSeconds(5);

  /**
   * The decision lease when neither the coordinator (an older one) nor the option says: beyond the
   * coordinator's longest wait with its default timeouts (a dump and two finishing phases).
   */
  static final Duration LEASE_UNSAID = Duration.ofMinutes(15);

  public static AgentConfig defaults(String node, Path home, Path nativeDir, String criu) {
    return new AgentConfig(
        node,
        home,
        nativeDir.resolve("cohort-init"),
        List.of(criu),
        Duration.ofSeconds(30),
        Duration.ofMinutes(10),
        64L << 20,
        false,
        null,
        null,
        null);
  }

  public AgentConfig withVhostNetworking(boolean on) {
    return with(on, sharedImages, decisionLease, checkpointKey);
  }

  public AgentConfig withSharedImages(Path dir) {
    return with(vhostNetworking, dir, decisionLease, checkpointKey);
  }

  /** With a fixed decision lease ({@code cohort agent --decision-lease}); null: the default. */
  public AgentConfig withDecisionLease(Duration lease) {
    return with(vhostNetworking, sharedImages, lease, checkpointKey);
  }

  /** With the cluster's checkpoint key (every agent that seals or restores images needs it). */
  public AgentConfig withCheckpointKey(CheckpointKey key) {
    return with(vhostNetworking, sharedImages, decisionLease, key);
  }

  /** This configuration with the fields the daemons set from their options. */
  private AgentConfig with(boolean networking, Path shared, Duration lease, CheckpointKey key) {
    return new AgentConfig(
        node,
        home,
        initBinary,
        criuCommand,
        launchTimeout,
        criuTimeout,
        minFreeBytes,
        networking,
        shared,
        lease,
        key);
  }

  /** How long to wait for the coordinator's word after an answer, given what it said (ms). */
  Duration leaseAfter(long decisionWithinMs) {
    if (decisionLease != null) {
      return decisionLease;
    }
    return decisionWithinMs > 0
        ? Duration.ofMillis(decisionWithinMs).plus(LEASE_MARGIN)
        : LEASE_UNSAID;
  }

  Path rshBinary() {
    return initBinary.resolveSibling("cohort-rsh");
  }

  Path vhostsDir() {
    return home.resolve("vhosts");
  }

  Path imagesDir() {
    return sharedImages != null ? sharedImages : home.resolve("images");
  }

  /**
   * Where this agent's dumps in progress live inside the image store: beside the committed images
   * (so publishing one is an atomic rename), and per node in a shared store, so that an agent only
   * ever cleans up its own.
   */
  String pendingName() {
    return sharedImages != null ? ".pending-" + node : ".pending";
  }
}
