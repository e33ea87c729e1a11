package io.cohort.agent;

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
    Path sharedImages) {

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
        null);
  }

  public AgentConfig withVhostNetworking(boolean on) {
    return new AgentConfig(
        node,
        home,
        initBinary,
        criuCommand,
        launchTimeout,
        criuTimeout,
        minFreeBytes,
        on,
        sharedImages);
  }

  public AgentConfig withSharedImages(Path dir) {
    return new AgentConfig(
        node,
        home,
        initBinary,
        criuCommand,
        launchTimeout,
        criuTimeout,
        minFreeBytes,
        vhostNetworking,
        dir);
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
