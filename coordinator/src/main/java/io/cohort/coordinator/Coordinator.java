package io.cohort.coordinator;

import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.common.JobSignals;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.FenceNodeResponse;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobSpec;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.KillJobResponse;
import io.cohort.proto.v1.NodeInfo;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.OutputStream;
import io.cohort.proto.v1.Owner;
import io.cohort.proto.v1.RestartResponse;
import io.cohort.proto.v1.VhostPlacement;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The coordinator: jobs, placement, the checkpoint barrier, restarts and the catalog.
 * Transport-neutral; {@link CohortGrpcService} is its gRPC adapter. A facade: {@link JobLauncher}
 * runs jobs, {@link JobCheckpointer} checkpoints them, {@link JobRestarter} restarts them, queries
 * are {@link JobQueries}' (they never write). A job's record changes only under the job's lock: in
 * those (run records a new job), here (kill, rm) and in the {@link JobReconciler}'s step.
 */
public final class Coordinator implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Coordinator.class);

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final ExecutorService io = Executors.newCachedThreadPool(daemon("cohort-coord-io"));
  private final ScheduledExecutorService serial =
      Executors.newSingleThreadScheduledExecutor(daemon("cohort-barrier"));
  private final JobReconciler reconciler;
  private final JobQueries queries;
  private final JobCheckpointer checkpointer;
  private final JobVhosts vhosts;
  private final JobLauncher launcher;
  private final JobRestarter restarter;
  private final ImageSweeper sweeper;
  private final NodeFencing fencing;
  private final PartnerCopies copies;
  private final EpochRecovery epochs;

  Coordinator(
      Catalog catalog,
      AgentDirectory agents,
      BarrierConfig barrierConfig,
      NodeLossConfig nodeLoss,
      Clock clock) {
    this(
        catalog,
        agents,
        barrierConfig,
        nodeLoss,
        AddressPool.parse(JobNetworks.DEFAULT_POOL),
        clock);
  }

  Coordinator(
      Catalog catalog,
      AgentDirectory agents,
      BarrierConfig barrierConfig,
      NodeLossConfig nodeLoss,
      AddressPool pool,
      Clock clock) {
    this.catalog = catalog;
    this.agents = agents;
    // Nodes the catalog names are known before they register: until then their vhosts are shown
    // as unknown, and calls to them fail as to a node that is down, not as to an unknown one.
    if (agents.learnsFromHeartbeats()) {
      agents.expect(nodesNamedBy(catalog));
    }
    this.fencing = new NodeFencing(catalog, agents, clock, nodeLoss.deadAfter());
    this.copies = new PartnerCopies(catalog, agents, nodeLoss, clock);
    this.epochs = new EpochRecovery(catalog, agents, clock);
    JobObserver observer = new JobObserver(catalog, agents);
    this.reconciler = new JobReconciler(catalog, agents, observer, fencing, epochs, io);
    this.queries = new JobQueries(catalog, agents, observer, reconciler, epochs);
    this.checkpointer =
        new JobCheckpointer(
            catalog, agents, reconciler, copies, epochs, barrierConfig, clock, io, serial);
    this.vhosts = new JobVhosts(catalog, agents);
    JobNetworks networks = new JobNetworks(catalog, pool);
    this.launcher =
        new JobLauncher(catalog, agents, vhosts, networks, clock, nodeLoss.imagePolicy());
    this.restarter = new JobRestarter(catalog, agents, reconciler, vhosts, networks, clock);
    this.sweeper = new ImageSweeper(catalog, agents, io, serial, 1000);
    if (nodeLoss.deadAfter() != null) {
      serial.scheduleWithFixedDelay(
          fencing::fenceOverdue, 1, 1, java.util.concurrent.TimeUnit.SECONDS);
    }
  }

  /**
   * A coordinator whose catalog lives in {@code home}, signed with {@code key}, and which reaches
   * the given agents.
   */
  public static Coordinator create(
      Path home,
      CheckpointKey key,
      java.util.Map<String, io.grpc.Channel> agentChannels,
      BarrierConfig barrierConfig) {
    java.util.Map<String, AgentClient> clients = new java.util.HashMap<>();
    agentChannels.forEach((node, ch) -> clients.put(node, client(node, ch, barrierConfig)));
    return new Coordinator(
        new Catalog(home, key),
        new AgentDirectory(clients),
        barrierConfig,
        NodeLossConfig.defaults(),
        Clock.systemUTC());
  }

  /**
   * The coordinator daemon's: agents announce themselves with heartbeats, {@code dial} opens a
   * channel to an agent's address, a node is down after {@code liveness} without a heartbeat; jobs
   * of several vhosts get their addresses from {@code vhostPool} (CIDR, see {@link JobNetworks});
   * checkpoint records are signed with {@code key}.
   */
  public static Coordinator createWithRegistry(
      Path home,
      CheckpointKey key,
      BarrierConfig barrierConfig,
      NodeLossConfig nodeLoss,
      String vhostPool,
      Duration liveness,
      java.util.function.Function<String, io.grpc.ManagedChannel> dial) {
    AgentDirectory agents =
        new AgentDirectory(
            Clock.systemUTC(), liveness, dial, (node, ch) -> client(node, ch, barrierConfig));
    return new Coordinator(
        new Catalog(home, key),
        agents,
        barrierConfig,
        nodeLoss,
        AddressPool.parse(vhostPool),
        Clock.systemUTC());
  }

  /** The vhost address pool the coordinator daemon uses unless told otherwise. */
  public static final String DEFAULT_VHOST_POOL = JobNetworks.DEFAULT_POOL;

  private static AgentClient client(String node, io.grpc.Channel ch, BarrierConfig config) {
    return new AgentClient(node, ch, Duration.ofSeconds(30), config.dump().plusMinutes(1));
  }

  /** The nodes a catalog names: where its jobs' vhosts are, were, or have images. */
  private static java.util.Set<String> nodesNamedBy(Catalog catalog) {
    java.util.Set<String> nodes = new java.util.TreeSet<>();
    for (JobRecord r : catalog.jobs()) {
      r.getInfo().getVhostsList().forEach(v -> nodes.add(v.getNode()));
      r.getVhostsToEndList().forEach(v -> nodes.add(v.getNode()));
      r.getOpenEpoch().getVhostsList().forEach(v -> nodes.add(v.getNode()));
    }
    for (CheckpointInfo c : catalog.checkpoints("")) {
      c.getVhostsList().forEach(v -> nodes.add(v.getNode()));
      c.getCopiesList().forEach(k -> nodes.add(k.getNode()));
    }
    return nodes;
  }

  /**
   * An agent's heartbeat (coordinator daemon only). When the node (re)registers, which includes its
   * first heartbeat after this coordinator started, its images are swept ({@link ImageSweeper}).
   * The dumps the agent ended on its own abort the barrier that still runs them.
   */
  public void heartbeat(HeartbeatRequest hb) {
    if (agents.heartbeat(hb)) {
      sweeper.sweepLater(hb.getNode());
      copies.resumeAll(); // copies that waited for this node, or left by a previous coordinator
    }
    hb.getAbandonedDumpsList().forEach(d -> epochs.abandoned(hb.getNode(), d));
    reconciler.nodeBack(hb.getNode());
  }

  /** Declares a node that is down dead ({@link NodeFencing}). */
  public FenceNodeResponse fenceNode(String node) {
    return fencing.fence(node, "declared dead with `cohort nodes fence`");
  }

  /**
   * Sweeps the images no checkpoint record lists from every live node now ({@link ImageSweeper});
   * the embedded mode's start. Returns how many were removed; a node that cannot be swept is
   * skipped (and logged).
   */
  public int sweepImages() {
    int removed = 0;
    for (String node : agents.nodes().stream().filter(agents::isAlive).toList()) {
      try {
        removed += sweeper.sweep(node).removed().size();
      } catch (RuntimeException e) {
        log.warn("cannot sweep the images of node {}: {}", node, e.getMessage());
      }
    }
    return removed;
  }

  /** The nodes, their liveness and how many running vhosts each has. */
  public List<NodeInfo> nodes() {
    java.util.Map<String, Integer> running = vhosts.runningByNode();
    List<NodeInfo> out = new ArrayList<>();
    for (NodeInfo.Builder b : agents.describe()) {
      if (b.getAlive() && b.getKernel().isEmpty()) { // a fixed agent: no heartbeat to tell
        try {
          var d = agents.agent(b.getNode()).describe();
          b.setKernel(d.getKernel())
              .setCriuVersion(d.getCriuVersion())
              .setImageStoreFreeBytes(d.getImageStoreFreeBytes());
        } catch (CohortException e) {
          b.setAlive(false);
        }
      }
      out.add(b.setRunningVhosts(running.getOrDefault(b.getNode(), 0)).build());
    }
    return out;
  }

  // ------------------------------------------------------------------ run

  /** Runs a new job ({@link JobLauncher} has how) for {@code owner}; {@code stdin} may be empty. */
  public JobInfo run(
      JobSpec spec,
      List<String> nodes,
      int vhosts,
      int slots,
      com.google.protobuf.ByteString stdin,
      Owner owner) {
    return launcher.run(spec, owner, nodes, vhosts, slots, stdin);
  }

  // ------------------------------------------------------------------ queries

  public JobInfo job(String jobId) {
    return queries.job(jobId);
  }

  /** The job's owner, from its record only (no agent is asked); NOT_FOUND for an unknown job. */
  public Owner owner(String jobId) {
    return catalog.job(jobId).getInfo().getOwner();
  }

  public List<JobInfo> jobs() {
    return queries.jobs();
  }

  public List<CheckpointInfo> checkpoints(String jobId) {
    return queries.checkpoints(jobId);
  }

  /** See {@link JobQueries#watch}. */
  public void watch(
      String jobId, Consumer<JobInfo> sink, BooleanSupplier cancelled, BooleanSupplier ready) {
    queries.watch(jobId, sink, cancelled, ready);
  }

  /** See {@link JobQueries#output}. */
  public Iterator<OutputChunk> output(
      String jobId, long offset, boolean follow, OutputStream only) {
    return queries.output(jobId, offset, follow, only);
  }

  // ------------------------------------------------------------------ checkpoint

  /** Runs the barrier for one new epoch; blocks until it is committed or aborted. */
  public CheckpointInfo checkpoint(
      String jobId, boolean stop, CheckpointBarrier.Listener progress) {
    return checkpointer.checkpoint(jobId, stop, progress);
  }

  // ------------------------------------------------------------------ restart

  /** Restarts a job from a checkpoint id, or from the latest checkpoint of a job id. */
  public RestartResponse restart(String target, boolean replace, List<String> nodes) {
    return restarter.restart(target, replace, nodes);
  }

  // ------------------------------------------------------------------ kill, rm, output

  /**
   * Ends a running job. Its vhosts on nodes that are down are left to end when their node is back
   * (the response's warnings say which): the job is killed all the same.
   */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  public KillJobResponse kill(String jobId) {
    try (Catalog.Hold hold = catalog.lockJob(jobId)) {
      JobRecord rec = reconciler.reconcile(jobId);
      if (rec.getInfo().getState() != JobState.JOB_STATE_RUNNING) {
        throw CohortException.precondition(
            "job %s is not running (%s)", jobId, describe(rec.getInfo()));
      }
      List<VhostPlacement> left = vhosts.endOrLeave(rec.getInfo().getVhostsList());
      JobInfo info = rec.getInfo().toBuilder().setState(JobState.JOB_STATE_KILLED).build();
      catalog.saveJob(rec.toBuilder().setInfo(info).addAllVhostsToEnd(left).build());
      KillJobResponse.Builder out = KillJobResponse.newBuilder();
      for (VhostPlacement v : left) {
        out.addWarnings(
            String.format(
                "vhost %s on node %s (%s) could not be ended now: it is ended when %s is back",
                v.getVhostId(),
                v.getNode(),
                agents.isDead(v.getNode()) ? "declared dead" : "down",
                v.getNode()));
      }
      reconciler.endLeftVhosts(catalog.job(jobId)); // remembers their nodes for their return
      return out.setJob(reconciler.reconcile(jobId).getInfo()).build();
    }
  }

  /**
   * Sends a signal to a running job's command (its head vhost's init forwards it to the command's
   * process group); the job is not ended or marked, whatever the command does with it. Under the
   * job's lock, so that it never lands in the middle of a checkpoint or a restart. Returns the
   * signal's number.
   */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  public int signal(String jobId, String signal) {
    int number = JobSignals.parse(signal);
    try (Catalog.Hold hold = catalog.lockJob(jobId)) {
      JobRecord rec = reconciler.reconcile(jobId);
      if (rec.getInfo().getState() != JobState.JOB_STATE_RUNNING) {
        throw CohortException.precondition(
            "job %s is not running (%s)", jobId, describe(rec.getInfo()));
      }
      VhostPlacement head = rec.getInfo().getVhosts(0);
      agents.agent(head.getNode()).signal(head.getVhostId(), number);
      log.info("job-{}: signal {} sent", jobId, number);
      return number;
    }
  }

  /**
   * Deletes a checkpoint: its record first (never a listed checkpoint without images), then every
   * copy of its images; a copy on a node that is down is left to the sweep when it is back (a
   * warning says so).
   */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  public List<String> removeCheckpoint(String ckptId) {
    Ids.requireCheckpoint(ckptId);
    CheckpointInfo ckpt =
        catalog
            .checkpoint(ckptId)
            .orElseThrow(
                () ->
                    CohortException.notFound(
                        "checkpoint %s does not exist (see `cohort checkpoints`)", ckptId));
    List<String> warnings = new ArrayList<>();
    try (Catalog.Hold hold = catalog.lockJob(ckpt.getJobId())) {
      catalog.deleteCheckpoint(ckptId);
      java.util.Set<String> done = new java.util.HashSet<>();
      List<VhostPlacement> where = new ArrayList<>(ckpt.getVhostsList());
      ckpt.getCopiesList()
          .forEach(
              k ->
                  where.add(
                      VhostPlacement.newBuilder()
                          .setVhostId(k.getVhostId())
                          .setNode(k.getNode())
                          .build()));
      for (VhostPlacement v : where) {
        if (!done.add(v.getVhostId() + "@" + v.getNode())) {
          continue;
        }
        try {
          agents.agent(v.getNode()).deleteImage(ckptId, v.getVhostId());
        } catch (CohortException e) {
          if (e.kind() != CohortException.Kind.UNAVAILABLE) {
            throw e;
          }
          warnings.add(
              String.format(
                  "the image of %s on node %s (down) is removed when %s is back",
                  v.getVhostId(), v.getNode(), v.getNode()));
        }
      }
    }
    return warnings;
  }

  static String describe(JobInfo j) {
    return switch (j.getState()) {
      case JOB_STATE_RUNNING -> "running";
      case JOB_STATE_STOPPED ->
          "stopped by checkpoint "
              + j.getLatestCheckpoint()
              + " (restart it with `cohort restart "
              + j.getJobId()
              + "`)";
      case JOB_STATE_EXITED ->
          j.getExitSignal() != 0
              ? "killed by signal " + j.getExitSignal()
              : "exited with status " + j.getExitCode();
      case JOB_STATE_KILLED -> "killed";
      case JOB_STATE_LOST -> "lost (its processes vanished without an exit status)";
      default -> j.getState().name();
    };
  }

  private static java.util.concurrent.ThreadFactory daemon(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }

  @Override
  public void close() {
    copies.close();
    agents.close();
    io.shutdownNow();
    serial.shutdownNow();
    // Nothing this coordinator started writes to the catalog once it is closed.
    awaitQuietly(io);
    awaitQuietly(serial);
  }

  /** Waits (a few seconds at most) for an executor that was shut down to finish its tasks. */
  static void awaitQuietly(java.util.concurrent.ExecutorService e) {
    try {
      if (!e.awaitTermination(5, java.util.concurrent.TimeUnit.SECONDS)) {
        log.warn("a task of the coordinator did not end within 5 s of its close");
      }
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
