package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.ConfigureJobNetworkRequest;
import io.cohort.proto.v1.CreateVhostRequest;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobSpec;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.NodeInfo;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.RestartResponse;
import io.cohort.proto.v1.RestoreVhostRequest;
import io.cohort.proto.v1.RestoreVhostResponse;
import io.cohort.proto.v1.VerifyImageRequest;
import io.cohort.proto.v1.VhostPlacement;
import io.cohort.proto.v1.VhostRoute;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
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
 * Transport-neutral; {@link CohortGrpcService} is its gRPC adapter. Queries are {@link JobQueries}'
 * (they never write); a job's record changes only under the job's lock: here (run, checkpoint,
 * restart, kill) and in the {@link JobReconciler}'s step.
 */
public final class Coordinator implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Coordinator.class);

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final BarrierConfig barrierConfig;
  private final Clock clock;
  private final ExecutorService io = Executors.newCachedThreadPool(daemon("cohort-coord-io"));
  private final ScheduledExecutorService serial =
      Executors.newSingleThreadScheduledExecutor(daemon("cohort-barrier"));
  private final SecureRandom random = new SecureRandom();
  private final JobReconciler reconciler;
  private final JobQueries queries;
  private final JobCheckpointer checkpointer;

  Coordinator(Catalog catalog, AgentDirectory agents, BarrierConfig barrierConfig, Clock clock) {
    this.catalog = catalog;
    this.agents = agents;
    this.barrierConfig = barrierConfig;
    this.clock = clock;
    JobObserver observer = new JobObserver(catalog, agents);
    this.reconciler = new JobReconciler(catalog, agents, observer, io);
    this.queries = new JobQueries(catalog, agents, observer, reconciler);
    this.checkpointer =
        new JobCheckpointer(catalog, agents, reconciler, barrierConfig, clock, io, serial);
  }

  /** A coordinator whose catalog lives in {@code home} and which reaches the given agents. */
  public static Coordinator create(
      Path home,
      java.util.Map<String, io.grpc.Channel> agentChannels,
      BarrierConfig barrierConfig) {
    java.util.Map<String, AgentClient> clients = new java.util.HashMap<>();
    agentChannels.forEach((node, ch) -> clients.put(node, client(node, ch, barrierConfig)));
    return new Coordinator(
        new Catalog(home), new AgentDirectory(clients), barrierConfig, Clock.systemUTC());
  }

  /**
   * The coordinator daemon's: agents announce themselves with heartbeats, {@code dial} opens a
   * channel to an agent's address, a node is down after {@code liveness} without a heartbeat.
   */
  public static Coordinator createWithRegistry(
      Path home,
      BarrierConfig barrierConfig,
      Duration liveness,
      java.util.function.Function<String, io.grpc.ManagedChannel> dial) {
    AgentDirectory agents =
        new AgentDirectory(
            Clock.systemUTC(), liveness, dial, (node, ch) -> client(node, ch, barrierConfig));
    return new Coordinator(new Catalog(home), agents, barrierConfig, Clock.systemUTC());
  }

  private static AgentClient client(String node, io.grpc.Channel ch, BarrierConfig config) {
    return new AgentClient(node, ch, Duration.ofSeconds(30), config.dump().plusMinutes(1));
  }

  /** An agent's heartbeat (coordinator daemon only). */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  public void heartbeat(HeartbeatRequest hb) {
    agents.heartbeat(hb);
    reconciler.nodeBack(hb.getNode());
  }

  /** The nodes, their liveness and how many running vhosts each has. */
  public List<NodeInfo> nodes() {
    java.util.Map<String, Integer> running = runningVhostsByNode();
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

  private java.util.Map<String, Integer> runningVhostsByNode() {
    java.util.Map<String, Integer> running = new java.util.HashMap<>();
    for (JobRecord r : catalog.jobs()) {
      if (r.getInfo().getState() == JobState.JOB_STATE_RUNNING) {
        r.getInfo().getVhostsList().forEach(v -> running.merge(v.getNode(), 1, Integer::sum));
      }
    }
    return running;
  }

  /**
   * The node of each vhost of a new job: spread over the nodes asked for, or all on the live node
   * with the fewest running vhosts ({@link Placement} has the rule).
   */
  private Placement place(List<String> requested, int vhosts) {
    java.util.Map<String, Integer> running = runningVhostsByNode();
    if (requested.isEmpty()) {
      return Placement.onLeastBusy(
          agents.nodes().stream().filter(agents::isAlive).toList(), vhosts, running);
    }
    Placement p = Placement.onNodes(requested, vhosts, running, agents::agent);
    requireOneNode(p.nodes());
    return p;
  }

  /** Vhosts of one job on different nodes talk through the overlay: every node needs one. */
  private void requireOneNode(List<String> nodes) {
    if (nodes.stream().distinct().count() <= 1) {
      return;
    }
    for (String n : nodes.stream().distinct().toList()) {
      agents.agent(n); // NOT_FOUND or UNAVAILABLE with the reason
      if (agents.overlayAddress(n).isEmpty()) {
        throw CohortException.precondition(
            "node %s has no overlay endpoint, so vhosts of one "
                + "job cannot span it and other nodes; put them on one node (e.g. --nodes %s)",
            n, nodes.get(0));
      }
    }
  }

  /** Tells every node of a job where all its vhosts are; starts vhosts waiting for it. */
  private void configureNetwork(String jobId, List<VhostPlacement> vhosts) {
    if (vhosts.size() < 2) {
      return;
    }
    ConfigureJobNetworkRequest.Builder req =
        ConfigureJobNetworkRequest.newBuilder().setJobId(jobId);
    for (VhostPlacement v : vhosts) {
      req.addVhosts(
          VhostRoute.newBuilder()
              .setAddress(v.getAddress())
              .setNode(v.getNode())
              .setOverlayAddress(agents.overlayAddress(v.getNode())));
    }
    // Nodes of other vhosts first, the head's node last: its mpirun starts when released.
    List<String> nodes =
        new ArrayList<>(vhosts.stream().map(VhostPlacement::getNode).distinct().toList());
    java.util.Collections.reverse(nodes);
    for (String n : nodes) {
      agents.agent(n).configureJobNetwork(req.build());
    }
  }

  /** Address of vhost {@code index} of a job on the job's virtual network (one /24 per job). */
  static String vhostAddress(String jobId, int index) {
    return "198.19." + (Long.parseLong(jobId) % 256) + "." + (10 + index);
  }

  // ------------------------------------------------------------------ run

  public JobInfo run(JobSpec spec, List<String> nodes, int vhosts, int slots) {
    if (spec.getCommandCount() == 0 || spec.getCommand(0).isBlank()) {
      throw CohortException.invalid("no command given: use `cohort run -- CMD ARGS...`");
    }
    if (!spec.getCwd().startsWith("/")) {
      throw CohortException.invalid(
          "working directory must be an absolute path, got '%s'", spec.getCwd());
    }
    if (vhosts < 0 || vhosts > 64 || slots < 0) {
      throw CohortException.invalid("--vhosts must be 1..64 and --slots positive");
    }
    Placement where = place(nodes, vhosts);
    List<String> placement = where.nodes();
    String jobId = catalog.allocateJobId();
    String token = HexFormat.of().formatHex(random.generateSeed(16));
    boolean networked = placement.size() > 1;
    List<String> peers = new ArrayList<>();
    for (int i = 0; networked && i < placement.size(); i++) {
      peers.add(vhostAddress(jobId, i));
    }
    // Workers first (their spawn services must be up when the head's mpirun starts), head last.
    List<VhostPlacement> created = new ArrayList<>();
    try {
      for (int i = placement.size() - 1; i >= 0; i--) {
        CreateVhostRequest.Builder req =
            CreateVhostRequest.newBuilder()
                .setJobId(jobId)
                .setVhostId(Ids.vhost(jobId, i))
                .setHostname("job" + jobId + "-" + i)
                .setToken(token);
        if (networked) {
          req.setAddress(peers.get(i));
        }
        if (i == 0) {
          req.setSpec(spec);
          if (networked) {
            req.addAllPeers(peers).setSlots(slots > 0 ? slots : 1);
          }
        } else {
          // A worker vhost idles until the head's mpirun starts daemons in it.
          req.setSpec(spec.toBuilder().clearCommand().addCommand("sleep").addCommand("infinity"));
        }
        created.add(0, agents.agent(placement.get(i)).createVhost(req.build()).getPlacement());
      }
      configureNetwork(jobId, created);
    } catch (RuntimeException e) {
      for (VhostPlacement v : created) {
        try {
          agents.agent(v.getNode()).kill(v.getVhostId());
        } catch (RuntimeException ignored) {
          // best effort: the run failed anyway
        }
      }
      throw e;
    }
    String logPath = agents.agent(placement.get(0)).getVhost(Ids.vhost(jobId, 0)).getLogPath();
    JobInfo info =
        JobInfo.newBuilder()
            .setJobId(jobId)
            .setSpec(spec)
            .setState(JobState.JOB_STATE_RUNNING)
            .setCreatedUnixMs(clock.millis())
            .setIncarnation(1)
            .addAllVhosts(created)
            .setLogPath(logPath)
            .build();
    catalog.saveJob(JobRecord.newBuilder().setInfo(info).setToken(token).setNextEpoch(1).build());
    log.info(
        "job-{}: started, {} vhost(s) on {}{} ({})",
        jobId,
        placement.size(),
        String.join(",", placement),
        where.unused().isEmpty() ? "" : " (" + String.join(",", where.unused()) + " unused)",
        String.join(" ", spec.getCommandList()));
    return info;
  }

  // ------------------------------------------------------------------ queries

  public JobInfo job(String jobId) {
    return queries.job(jobId);
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
  public Iterator<OutputChunk> output(String jobId, long offset, boolean follow) {
    return queries.output(jobId, offset, follow);
  }

  // ------------------------------------------------------------------ checkpoint

  /** Runs the barrier for one new epoch; blocks until it is committed or aborted. */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  public CheckpointInfo checkpoint(
      String jobId, boolean stop, CheckpointBarrier.Listener progress) {
    return checkpointer.checkpoint(jobId, stop, progress);
  }

  // ------------------------------------------------------------------ restart

  /** Restarts a job from a checkpoint id, or from the latest checkpoint of a job id. */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  public RestartResponse restart(String target, boolean replace, List<String> nodes) {
    long t0 = clock.millis();
    String jobId = Ids.isCheckpoint(target) ? Ids.jobOfCheckpoint(target) : target;
    if (!Ids.isJob(jobId)) {
      throw CohortException.invalid(
          "'%s' is neither a job id nor a checkpoint id (JOB.EPOCH)", target);
    }
    try (Catalog.Hold hold = catalog.lockJob(jobId)) {
      CheckpointInfo ckpt = resolve(target);
      JobRecord rec = reconciler.reconcile(jobId);
      if (rec.getUnstoppedCount() > 0) {
        VhostPlacement v = rec.getUnstopped(0);
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
        killVhosts(rec.getInfo());
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
        configureNetwork(jobId, placed);
      } catch (RuntimeException e) {
        for (VhostPlacement p : placed) {
          try {
            agents.agent(p.getNode()).kill(p.getVhostId());
          } catch (RuntimeException ignored) {
            // best effort: the restart failed anyway
          }
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
    java.util.Map<String, Integer> running = runningVhostsByNode();
    if (job.getState() == JobState.JOB_STATE_RUNNING) { // --replace: its vhosts make way
      job.getVhostsList().forEach(v -> running.merge(v.getNode(), -1, Integer::sum));
    }
    Placement p = Placement.onNodes(nodes, ckpt.getVhostsCount(), running, agents::agent);
    requireOneNode(p.nodes());
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

  // ------------------------------------------------------------------ kill, rm, output

  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  public JobInfo kill(String jobId) {
    try (Catalog.Hold hold = catalog.lockJob(jobId)) {
      JobRecord rec = reconciler.reconcile(jobId);
      if (rec.getInfo().getState() != JobState.JOB_STATE_RUNNING) {
        throw CohortException.precondition(
            "job %s is not running (%s)", jobId, describe(rec.getInfo()));
      }
      killVhosts(rec.getInfo());
      JobInfo info = rec.getInfo().toBuilder().setState(JobState.JOB_STATE_KILLED).build();
      catalog.saveJob(rec.toBuilder().setInfo(info).build());
      return reconciler.reconcile(jobId).getInfo();
    }
  }

  private void killVhosts(JobInfo info) {
    for (VhostPlacement v : info.getVhostsList()) {
      agents.agent(v.getNode()).kill(v.getVhostId());
    }
  }

  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  public void removeCheckpoint(String ckptId) {
    Ids.requireCheckpoint(ckptId);
    CheckpointInfo ckpt =
        catalog
            .checkpoint(ckptId)
            .orElseThrow(
                () ->
                    CohortException.notFound(
                        "checkpoint %s does not exist (see `cohort checkpoints`)", ckptId));
    try (Catalog.Hold hold = catalog.lockJob(ckpt.getJobId())) {
      catalog.deleteCheckpoint(ckptId); // unlisted first: never a listed checkpoint without images
      for (VhostPlacement v : ckpt.getVhostsList()) {
        agents.agent(v.getNode()).deleteImage(ckptId, v.getVhostId());
      }
    }
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
    agents.close();
    io.shutdownNow();
    serial.shutdownNow();
  }
}
