package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.Ids;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.CheckpointDecision;
import io.cohort.proto.v1.CreateVhostRequest;
import io.cohort.proto.v1.CreateVhostResponse;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.InflightPackets;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.GetNodeResponse;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.ReadOutputRequest;
import io.cohort.proto.v1.RestoreVhostRequest;
import io.cohort.proto.v1.RestoreVhostResponse;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.VhostPlacement;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.ConfigureJobNetworkRequest;
import io.cohort.proto.v1.ImageChunk;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.ImportImageResponse;
import io.cohort.proto.v1.VerifyImageRequest;
import io.cohort.proto.v1.VhostState;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import io.grpc.ManagedChannel;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node agent's engine: vhosts on this node, their checkpoints with CRIU, their images.
 * Transport-neutral: {@link AgentGrpcService} is its thin gRPC adapter.
 *
 * <p>Per vhost, {@code home/vhosts/VHOST/} holds {@code record.json} (a {@link VhostRecord}),
 * {@code output.log} (the job's stdout and stderr, written directly by the job's processes,
 * so it survives checkpoint and restart) and {@code status} (written by the vhost init when
 * the command ends).
 */
public final class NodeAgent {
  private static final Logger log = LoggerFactory.getLogger(NodeAgent.class);
  private static final int READ_CHUNK = 64 * 1024;
  /** Port of the spawn service of every networked vhost's init (cohort-rsh connects to it). */
  static final int SPAWN_PORT = 7207;

  private final AgentConfig config;
  private final String who;
  private final CriuEngine criu;
  private final ImageStore images;
  private final VhostLauncher launcher;
  private final Path actionScript;
  private final Path initPath;
  private final Path rshPath;
  private final Function<String, ManagedChannel> dial;
  private final VhostOverlay overlay;
  private final ImageTransfer transfer;
  private final Map<String, ActiveDump> dumps = new ConcurrentHashMap<>();
  /** Dumps aborted before they were registered: "CKPT/VHOST". Guarded by {@code dumps}. */
  private final java.util.Set<String> abortedBeforeDump = new java.util.HashSet<>();
  /** The overlay cut of each checkpoint in progress whose job spans nodes, by checkpoint id. */
  private final Map<String, ChannelCut> cuts = new ConcurrentHashMap<>();
  /** How long a cut waits for the other nodes' markers once every vhost is dumped. */
  private static final java.time.Duration MARKER_TIMEOUT = java.time.Duration.ofSeconds(20);
  /**
   * Packets in flight towards each restored vhost at its checkpoint, by vhost id, written into
   * its network once the job's network is configured again (every vhost restored and routed).
   */
  private final Map<String, List<byte[]>> restoredInflight = new ConcurrentHashMap<>();
  /** Where in a vhost image the packets in flight at its cut are kept. */
  static final String INFLIGHT_IMAGE = "cohort-inflight.img";

  /** A dump between DumpVhost and FinishCheckpoint. */
  private static final class ActiveDump {
    final DumpSession session;
    final VhostRecord record;
    final DumpVhostRequest request;
    final boolean stop;
    final String ckpt;
    /** The job's overlay cut on this node; null when the job does not span nodes. */
    final ChannelCut cut;
    volatile boolean aborted;
    volatile boolean released;
    volatile boolean sealed;
    volatile long logSize;

    ActiveDump(DumpSession session, VhostRecord record, DumpVhostRequest request, String ckpt,
        ChannelCut cut) {
      this.session = session;
      this.record = record;
      this.request = request;
      this.stop = request.getStop();
      this.ckpt = ckpt;
      this.cut = cut;
    }
  }

  public NodeAgent(AgentConfig config) {
    this(config, null);
  }

  /**
   * An agent that can fetch images from other nodes' agents; {@code dial} opens a channel to
   * an agent's address (null: images never move between nodes, as in the embedded mode).
   */
  public NodeAgent(AgentConfig config, Function<String, ManagedChannel> dial) {
    this(config, dial, null);
  }

  /** A node agent whose vhosts reach other nodes through {@code overlay} (null: none). */
  public NodeAgent(AgentConfig config, Function<String, ManagedChannel> dial,
      VhostOverlay overlay) {
    this.config = config;
    this.dial = dial;
    this.overlay = overlay;
    this.who = "agent " + config.node();
    this.criu = new CriuEngine(config.criuCommand(), config.criuTimeout());
    this.images = new ImageStore(config.imagesDir(), config.pendingName());
    this.initPath = installContentAddressed(config.initBinary(), config.home(), "cohort-init");
    this.rshPath = installContentAddressed(config.rshBinary(), config.home(), "cohort-rsh");
    this.launcher = new VhostLauncher(initPath, config.launchTimeout());
    this.transfer = new ImageTransfer(config, images, dial, initPath);
    this.actionScript = installActionScript(config.home());
    images.removeAbandonedPending();
  }

  public String node() {
    return config.node();
  }

  public GetNodeResponse describe() {
    return GetNodeResponse.newBuilder().setNode(config.node()).setKernel(kernel())
        .setCriuVersion(criuVersion()).setImageStoreFreeBytes(images.freeBytes())
        .setImageStoreId(images.id()).build();
  }

  // ---------------------------------------------------------------- vhost lifecycle

  public CreateVhostResponse createVhost(CreateVhostRequest req) {
    String id = Ids.requireVhost(req.getVhostId());
    if (req.getSpec().getCommandCount() == 0) {
      throw CohortException.invalid("no command given");
    }
    Path dir = vhostDir(id);
    if (Files.exists(dir.resolve("record.json"))) {
      throw CohortException.precondition("vhost %s already exists on %s", id, config.node());
    }
    Path logFile = dir.resolve("output.log");
    Path status = dir.resolve("status");
    try {
      Files.createDirectories(dir);
      Files.deleteIfExists(status);
      Files.write(logFile, new byte[0]);
    } catch (IOException e) {
      throw DurableFiles.failure("cannot create " + dir, e);
    }
    boolean networked = !req.getAddress().isEmpty();
    if (networked && !config.vhostNetworking()) {
      throw CohortException.precondition("a job with several vhosts needs vhost networking, "
          + "which is off on this agent (the embedded mode never changes this machine's "
          + "network): run it on a cluster (`cohort cluster up`, then `cohort run --vhosts N`)");
    }
    List<String> command = req.getSpec().getCommandList();
    Map<String, String> env = jobEnvironment(req.getSpec().getEnvList());
    List<String> initOptions = new java.util.ArrayList<>();
    Path ready = dir.resolve("net-ready");
    long pid;
    try {
      if (networked) {
        Path tokenFile = dir.resolve("token");
        Files.deleteIfExists(ready);
        Files.writeString(tokenFile, req.getToken() + "\n");
        initOptions.addAll(List.of("--spawn-port", Integer.toString(SPAWN_PORT),
            "--token-file", tokenFile.toString()));
        // The command starts once the vhost's network is configured (after the launch).
        List<String> wrapped = new java.util.ArrayList<>(List.of("/bin/sh", "-c",
            "while [ ! -e \"$0\" ]; do sleep 0.02; done; exec \"$@\"", ready.toString()));
        wrapped.addAll(command);
        command = wrapped;
        if (req.getPeersCount() > 0) {
          Path hostfile = dir.resolve("hostfile");
          Files.write(hostfile, VhostNetwork.hostfile(req.getPeersList(), req.getSlots()));
          env.put("OMPI_MCA_plm_rsh_agent", rshPath.toString());
          env.put("OMPI_MCA_orte_default_hostfile", hostfile.toString());
          env.put("OMPI_MCA_btl_tcp_if_include", "eth0");
          env.put("OMPI_MCA_oob_tcp_if_include", "eth0");
          // Traffic between vhosts on different nodes is forwarded by the agents: ranks that
          // poll with nothing to do yield the core to them (8 B MPI round trip across nodes
          // 290 → 150 µs on 2 cores). A job may still set it to 0.
          env.putIfAbsent("OMPI_MCA_mpi_yield_when_idle", "1");
          env.put("COHORT_TOKEN", req.getToken());
          env.put("COHORT_SPAWN_PORT", Integer.toString(SPAWN_PORT));
        }
      }
      pid = launcher.launch(req.getHostname(), logFile, status, req.getSpec().getCwd(),
          initOptions, command, env);
      if (networked) {
        try {
          // The command starts when the coordinator has told every node of the job where its
          // vhosts are (ConfigureJobNetwork writes the ready file).
          VhostNetwork.attach(pid, id, req.getAddress());
        } catch (RuntimeException e) {
          new ProcessIdentity(pid, ProcessIdentity.of(pid).map(ProcessIdentity::startTicks)
              .orElse(-1L)).kill();
          throw e;
        }
      }
    } catch (IOException e) {
      DurableFiles.deleteTree(dir);
      throw DurableFiles.failure("cannot create vhost " + id, e);
    } catch (RuntimeException e) {
      DurableFiles.deleteTree(dir);
      throw e;
    }
    ProcessIdentity init = ProcessIdentity.of(pid).orElseGet(() -> new ProcessIdentity(pid, -1));
    VhostRecord rec = VhostRecord.newBuilder()
        .setVhostId(id).setJobId(req.getJobId()).setHostname(req.getHostname())
        .setSpec(req.getSpec()).setPid(pid).setPidStartTicks(init.startTicks())
        .setLogPath(logFile.toString()).setStatusPath(status.toString())
        .setState(VhostState.VHOST_STATE_RUNNING).setToken(req.getToken())
        .setInitPath(initPath.toString()).setAddress(req.getAddress())
        .setHostVeth(networked ? VhostNetwork.hostVeth(id) : "").build();
    save(rec);
    log.info("{}: vhost {} started, init pid {}", who, id, pid);
    return CreateVhostResponse.newBuilder().setPlacement(placement(rec))
        .setLogPath(logFile.toString()).build();
  }

  public GetVhostResponse getVhost(String vhostId) {
    VhostRecord rec = refresh(load(vhostId));
    long size;
    try {
      size = Files.size(Path.of(rec.getLogPath()));
    } catch (IOException e) {
      size = -1;
    }
    return GetVhostResponse.newBuilder().setState(rec.getState()).setExitCode(rec.getExitCode())
        .setExitSignal(rec.getExitSignal()).setPlacement(placement(rec))
        .setLogPath(rec.getLogPath()).setLogSize(size).build();
  }

  public VhostState kill(String vhostId) {
    VhostRecord rec = refresh(load(vhostId));
    if (rec.getState() != VhostState.VHOST_STATE_RUNNING) {
      return rec.getState();
    }
    ProcessIdentity init = identity(rec);
    init.kill();
    try {
      if (!init.awaitExit(10_000)) {
        throw CohortException.internal("vhost " + vhostId + " (pid " + init.pid()
            + ") did not die after SIGKILL", null);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    rec = rec.toBuilder().setState(VhostState.VHOST_STATE_KILLED).setPid(0).build();
    save(rec);
    dropVeth(rec);
    log.info("{}: vhost {} killed", who, vhostId);
    return rec.getState();
  }

  // ---------------------------------------------------------------- checkpoint phases

  public PrepareCheckpointResponse prepare(PrepareCheckpointRequest req) {
    long estimate = 0;
    for (String id : req.getVhostIdsList()) {
      VhostRecord rec = requireRunning(refresh(load(id)), "checkpoint");
      estimate += residentBytes(rec.getPid());
    }
    long free = images.freeBytes();
    if (free < estimate + config.minFreeBytes()) {
      throw new CohortException(CohortException.Kind.RESOURCE_EXHAUSTED, String.format(
          "not enough space for checkpoint %s on %s: %d MB free in %s, about %d MB needed; "
              + "free some space (e.g. `cohort rm` old checkpoints)", req.getCheckpointId(),
          config.node(), free >> 20, config.imagesDir(), (estimate + config.minFreeBytes()) >> 20));
    }
    return PrepareCheckpointResponse.newBuilder().setFreeBytes(free)
        .setEstimatedBytes(estimate).build();
  }

  /**
   * Freezes and dumps one vhost; answers once CRIU has written the image, with the vhost still
   * frozen. {@link #resume} or {@link #finish} releases it.
   */
  public DumpVhostResponse dump(DumpVhostRequest req) {
    String ckpt = Ids.requireCheckpoint(req.getCheckpointId());
    VhostRecord rec = requireRunning(refresh(load(req.getVhostId())), "checkpoint");
    String key = ckpt + "/" + rec.getVhostId();
    ActiveDump active;
    // Registration, the abort tombstones and FinishCheckpoint's removal all hold this lock, so
    // an abort that overtakes its dump is never lost (the dump sees the tombstone).
    synchronized (dumps) {
      if (abortedBeforeDump.remove(key)) {
        throw new CohortException(CohortException.Kind.ABORTED,
            "checkpoint " + ckpt + " was aborted before vhost " + rec.getVhostId() + " was dumped");
      }
      if (dumps.containsKey(key)) {
        throw CohortException.precondition("checkpoint %s of vhost %s is already in progress",
            ckpt, rec.getVhostId());
      }
      Path pending = images.createPending(ckpt, rec.getVhostId());
      Map<String, String> env = new HashMap<>();
      env.put("COHORT_HOOK_DIR", pending.resolve("hook").toString());
      env.put("COHORT_LOG_PATH", rec.getLogPath());
      env.put("COHORT_AGENT_PID", Long.toString(ProcessHandle.current().pid()));
      DumpSession session;
      try {
        session = DumpSession.start(pending.resolve("hook"), config.criuTimeout(),
            () -> criu.startDump(rec.getPid(), pending.resolve(ImageStore.CRIU_DIR), pending,
                actionScript, env, !req.getStop(), rec.getAddress().isEmpty() ? List.of()
                    : List.of("--external", "veth[eth0]")));
      } catch (IOException e) {
        images.discard(ckpt, rec.getVhostId());
        throw DurableFiles.failure("cannot start criu", e);
      }
      active = new ActiveDump(session, rec, req, ckpt, cutFor(ckpt, rec, req.getEpoch()));
      dumps.put(key, active);
    }
    try {
      ChannelCut cut = active.cut;
      DumpSession.Dumped d = active.session.awaitDumped(() -> {
        if (cut != null) {
          cut.networkLocked(rec.getVhostId());
        }
      });
      if (d.outcome() != DumpSession.Outcome.DUMPED || d.logSize() < 0 || active.aborted) {
        throw dumpFailed(active, d);
      }
      active.logSize = d.logSize();
      long bytes = ImageStore.totalBytes(images.pendingDir(ckpt, rec.getVhostId())
          .resolve(ImageStore.CRIU_DIR));
      long ms = active.session.millisToDumped();
      log.info("{}: {} dumped in {} ms, {} MB", who, key, ms, bytes >> 20);
      return DumpVhostResponse.newBuilder().setCriuMs(ms).setImageBytes(bytes).build();
    } catch (IOException | RuntimeException e) {
      // Resume the vhost and forget the partial image; the coordinator aborts the epoch.
      if (dumps.remove(key, active)) {
        abortSession(active);
      }
      if (e instanceof CohortException ce) {
        throw ce;
      }
      throw e instanceof IOException io ? DurableFiles.failure("checkpoint " + key + " failed", io)
          : CohortException.internal("checkpoint " + key + " failed: " + e, e);
    }
  }

  /**
   * The overlay cut of {@code ckpt} on this node, shared by the job's local vhosts; null when
   * the job has no vhost on another node (nothing of it crosses the overlay).
   */
  private ChannelCut cutFor(String ckpt, VhostRecord rec, long epoch) {
    if (overlay == null || rec.getAddress().isEmpty()) {
      return null;
    }
    String job = VhostOverlay.jobKey(rec.getAddress());
    if (overlay.peersOf(job).isEmpty()) {
      return null;
    }
    return cuts.computeIfAbsent(ckpt, c -> {
      java.util.Set<String> local = new java.util.TreeSet<>();
      for (Path d : localVhostDirs(rec.getJobId())) {
        String id = d.getFileName().toString();
        try {
          if (refresh(load(id)).getState() == VhostState.VHOST_STATE_RUNNING) {
            local.add(id);
          }
        } catch (CohortException e) {
          // not a vhost (any more)
        }
      }
      local.add(rec.getVhostId());
      return new ChannelCut(overlay, job, epoch, local, MARKER_TIMEOUT);
    });
  }

  /** Checkpoint-and-continue: every vhost is dumped, so this one may run again. */
  public ResumeVhostResponse resume(ResumeVhostRequest req) {
    ActiveDump active = active(req.getCheckpointId(), req.getVhostId());
    if (active.stop) {
      throw CohortException.precondition("checkpoint %s stops the job: its vhosts are not "
          + "resumed", req.getCheckpointId());
    }
    return ResumeVhostResponse.newBuilder().setFreezeMs(release(active, true)).build();
  }

  /**
   * Digests and syncs the image, writes its manifest durably and moves it to its final place.
   * From here the image is complete; it becomes a checkpoint when the coordinator writes the
   * record, and is discarded if the epoch aborts.
   */
  public SealImageResponse seal(SealImageRequest req) {
    ActiveDump active = active(req.getCheckpointId(), req.getVhostId());
    VhostRecord rec = active.record;
    long t0 = System.nanoTime();
    ImageManifest.Builder m = ImageManifest.newBuilder().setFormatVersion(1)
        .setCheckpointId(active.ckpt).setJobId(rec.getJobId()).setEpoch(active.request.getEpoch())
        .setVhostId(rec.getVhostId()).setHostname(rec.getHostname())
        .setCriuVersion(criuVersion()).setKernel(kernel()).setSpec(active.request.getSpec())
        .setNode(config.node()).setCreatedUnixMs(System.currentTimeMillis())
        .setOutputLogPath(rec.getLogPath()).setOutputLogSize(active.logSize)
        .setDumpedPid(rec.getPid()).setStatusPath(rec.getStatusPath())
        .setInitPath(rec.getInitPath()).setAddress(rec.getAddress());
    List<byte[]> inflight = active.cut == null ? List.of()
        : active.cut.recordingFor(rec.getAddress());
    long inflightBytes = inflight.stream().mapToLong(b -> b.length).sum();
    Map.Entry<ImageManifest, String> sealed;
    synchronized (active) {
      if (active.aborted) {
        throw new CohortException(CohortException.Kind.ABORTED,
            "checkpoint " + active.ckpt + " was aborted");
      }
      if (active.cut != null) {
        writeInflight(images.pendingDir(active.ckpt, rec.getVhostId()), rec, active, inflight);
      }
      sealed = images.seal(images.pendingDir(active.ckpt, rec.getVhostId()), m);
      images.publish(active.ckpt, rec.getVhostId());
      active.sealed = true;
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    log.info("{}: {}/{} sealed in {} ms ({} packets in flight towards it recorded)", who,
        active.ckpt, rec.getVhostId(), ms, inflight.size());
    return SealImageResponse.newBuilder().setManifest(sealed.getKey())
        .setManifestSha256(sealed.getValue()).setSealMs(ms).setInflightPackets(inflight.size())
        .setInflightBytes(inflightBytes).setImageStoreId(images.id()).build();
  }

  private static void writeInflight(Path pending, VhostRecord rec, ActiveDump active,
      List<byte[]> packets) {
    InflightPackets.Builder b = InflightPackets.newBuilder().setJobId(rec.getJobId())
        .setEpoch(active.request.getEpoch());
    packets.forEach(p -> b.addPackets(com.google.protobuf.ByteString.copyFrom(p)));
    Path f = pending.resolve(ImageStore.CRIU_DIR).resolve(INFLIGHT_IMAGE);
    try {
      Files.write(f, b.build().toByteArray());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot write the in-flight packets of " + active.ckpt, e);
    }
  }

  private ActiveDump active(String ckpt, String vhostId) {
    ActiveDump active = dumps.get(Ids.requireCheckpoint(ckpt) + "/" + vhostId);
    if (active == null) {
      throw CohortException.precondition("no dump of %s/%s is in progress on %s", ckpt, vhostId,
          config.node());
    }
    return active;
  }

  /**
   * Commit (the image is already sealed in place; for --stop, end the vhost) or abort (discard
   * the image; a vhost still frozen carries on). Idempotent for an abort.
   */
  public FinishCheckpointResponse finish(FinishCheckpointRequest req) {
    String ckpt = Ids.requireCheckpoint(req.getCheckpointId());
    String key = ckpt + "/" + req.getVhostId();
    boolean abort = req.getDecision() == CheckpointDecision.CHECKPOINT_DECISION_ABORT;
    ActiveDump active;
    synchronized (dumps) {
      active = dumps.remove(key);
      if (active == null && abort) {
        abortedBeforeDump.add(key); // the dump, if it comes late, must not run
        ChannelCut cut = cuts.remove(ckpt);
        if (cut != null) {
          cut.abort();
        }
        images.discard(ckpt, req.getVhostId());
        return FinishCheckpointResponse.getDefaultInstance();
      }
    }
    if (active == null) {
      throw CohortException.precondition("no dump of %s is waiting for a decision", key);
    }
    if (abort) {
      return FinishCheckpointResponse.newBuilder().setFreezeMs(abortSession(active)).build();
    }
    boolean stop = req.getDecision() == CheckpointDecision.CHECKPOINT_DECISION_COMMIT_STOP;
    if (stop != active.stop || !active.sealed) {
      abortSession(active);
      throw CohortException.precondition("cannot commit %s: %s", key, !active.sealed
          ? "its image was not sealed" : "the decision does not match the dump (stop=" + active.stop + ")");
    }
    long freeze = 0;
    try {
      if (stop) {
        save(active.record.toBuilder().setState(VhostState.VHOST_STATE_STOPPED).setPid(0).build());
      }
      freeze = active.released ? 0 : release(active, true);
      if (stop) {
        ProcessIdentity init = identity(active.record);
        if (init.isAlive()) {
          init.kill();
        }
      }
    } finally {
      active.session.close();
      cuts.remove(ckpt);
    }
    log.info("{}: {} committed ({})", who, key, stop ? "stopped" : "resumed");
    return FinishCheckpointResponse.newBuilder().setFreezeMs(freeze).build();
  }

  private long abortSession(ActiveDump active) {
    long freeze;
    synchronized (active) {
      active.aborted = true;
    }
    if (active.cut != null) {
      active.cut.abort();
      cuts.remove(active.ckpt);
    }
    try {
      freeze = active.released ? 0 : release(active, false);
    } finally {
      active.session.close();
      images.discard(active.ckpt, active.record.getVhostId());
    }
    log.info("{}: {}/{} aborted, vhost carries on", who, active.ckpt, active.record.getVhostId());
    return freeze;
  }

  /** Answers the held hook and waits for CRIU to let go of the tasks; returns the freeze time. */
  private long release(ActiveDump active, boolean commit) {
    DumpSession s = active.session;
    active.released = true;
    try {
      s.decide(commit);
    } catch (IOException e) {
      log.warn("{}: cannot answer the post-dump hook: {}", who, e.toString());
    }
    // The answer is queued for the hook: CRIU finishes its dump (if still dumping), reads it
    // and lets the tasks go. Killing CRIU instead could leave them with its network lock.
    Integer rc = s.awaitExit(config.criuTimeout());
    if (rc == null) {
      log.error("{}: criu did not let {}/{} go within {}; killing it", who, active.ckpt,
          active.record.getVhostId(), config.criuTimeout());
      s.killCriu();
    } else if (commit && rc != 0) {
      log.warn("{}: criu exited with {} after releasing {}/{}", who, rc, active.ckpt,
          active.record.getVhostId());
    }
    if (commit && active.cut != null) {
      active.cut.released(active.record.getVhostId(), active.stop); // network unlocked now
    }
    Path dumpLog = images.pendingDir(active.ckpt, active.record.getVhostId()).resolve("dump.log");
    if (!Files.exists(dumpLog)) {
      dumpLog = images.committedDir(active.ckpt, active.record.getVhostId()).resolve("dump.log");
    }
    return CriuLog.frozenMillis(dumpLog).orElse(s.frozenMillis());
  }

  private CohortException dumpFailed(ActiveDump active, DumpSession.Dumped d) {
    String ckpt = active.ckpt;
    String vhost = active.record.getVhostId();
    if (active.aborted) {
      return new CohortException(CohortException.Kind.ABORTED,
          "checkpoint " + ckpt + " was aborted while vhost " + vhost + " was dumped");
    }
    if (d.outcome() == DumpSession.Outcome.DUMPED) {
      return CohortException.precondition("checkpoint %s failed: the job's output log %s could "
          + "not be read at the dump (was it removed?). The job carries on.", ckpt,
          active.record.getLogPath());
    }
    if (d.outcome() == DumpSession.Outcome.TIMED_OUT) {
      return new CohortException(CohortException.Kind.DEADLINE_EXCEEDED, "checkpoint " + ckpt
          + " failed: criu did not dump vhost " + vhost + " within " + config.criuTimeout()
          + ". The job carries on.");
    }
    Integer rc = active.session.awaitExit(java.time.Duration.ofSeconds(10));
    String tail = CriuEngine.logTail(keepFailedLog(ckpt, vhost));
    if (tail.contains("No space left on device")) {
      return new CohortException(CohortException.Kind.RESOURCE_EXHAUSTED, "checkpoint " + ckpt
          + " failed: the image store " + config.imagesDir() + " is full; free some space "
          + "(e.g. `cohort rm` old checkpoints). The job carries on. CRIU said:\n" + tail);
    }
    return CohortException.internal("checkpoint " + ckpt + " failed: criu dump of vhost "
        + vhost + " exited with " + rc + ". The job carries on. CRIU said:\n" + tail, null);
  }

  /** Keeps CRIU's log of a failed dump (the pending image is discarded) for the user. */
  private Path keepFailedLog(String ckpt, String vhost) {
    Path from = images.pendingDir(ckpt, vhost).resolve("dump.log");
    Path to = config.home().resolve("logs").resolve("failed-dump-" + ckpt + "-" + vhost + ".log");
    try {
      Files.createDirectories(to.getParent());
      Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
      return to;
    } catch (IOException e) {
      return from; // e.g. the disk is full: quote what can still be read now
    }
  }

  // ---------------------------------------------------------------- restore

  /**
   * Checks, without changing anything, that a vhost can be restored from a checkpoint: the
   * image matches its manifest and the job's output log can be brought back to its size then.
   */
  public void verify(VerifyImageRequest req) {
    verified(Ids.requireCheckpoint(req.getCheckpointId()), Ids.requireVhost(req.getVhostId()),
        req.getManifestSha256());
  }

  private ImageStore.Image verified(String ckpt, String vhostId, String manifestSha) {
    ImageStore.Image image = images.verify(ckpt, vhostId, manifestSha);
    ImageManifest m = image.manifest();
    Path logFile = Path.of(m.getOutputLogPath());
    if (!Files.isRegularFile(logFile)) {
      throw CohortException.precondition("the job's output log %s is missing; it must exist "
          + "to restore checkpoint %s", logFile, ckpt);
    }
    long have = logFile.toFile().length();
    if (have < m.getOutputLogSize()) {
      throw CohortException.precondition("the job's output log %s is shorter (%d bytes) than at "
          + "checkpoint %s (%d bytes): it was truncated or replaced, so the job's open file "
          + "cannot be restored", logFile, have, ckpt, m.getOutputLogSize());
    }
    return image;
  }

  public RestoreVhostResponse restore(RestoreVhostRequest req) {
    String ckpt = Ids.requireCheckpoint(req.getCheckpointId());
    String vhostId = Ids.requireVhost(req.getVhostId());
    boolean known = Files.exists(vhostDir(vhostId).resolve("record.json"));
    VhostRecord existing = known ? refresh(load(vhostId)) : null;
    if (existing != null && existing.getState() == VhostState.VHOST_STATE_RUNNING) {
      throw CohortException.precondition("vhost %s is running; end it before restoring it",
          vhostId);
    }
    ImageStore.Image image = verified(ckpt, vhostId, req.getManifestSha256());
    VhostRecord rec = existing != null ? existing : adopt(vhostId, image.manifest(), ckpt);
    LogRollback rollback = rollBackLog(Path.of(image.manifest().getOutputLogPath()),
        image.manifest().getOutputLogSize(), ckpt);
    Path work = vhostDir(rec.getVhostId()).resolve("restore-" + ckpt + "-" + System.currentTimeMillis());
    CriuEngine.Restored restored;
    try {
      Files.deleteIfExists(Path.of(rec.getStatusPath()));
      if (!rec.getAddress().isEmpty()) {
        VhostNetwork.removeStale(rec.getVhostId());
      }
      restored = criu.restore(image.criuDir(), work, rec.getAddress().isEmpty() ? List.of()
          : List.of("--external", "veth[eth0]:" + VhostNetwork.hostVeth(rec.getVhostId())));
      if (!rec.getAddress().isEmpty()) {
        VhostNetwork.configureHostSide(VhostNetwork.hostVeth(rec.getVhostId()), rec.getAddress());
      }
    } catch (CriuException | IOException e) {
      rollback.undo();
      throw CohortException.internal("restore of vhost " + rec.getVhostId() + " from checkpoint "
          + ckpt + " failed; the output log is as it was. " + e.getMessage(), e);
    }
    ProcessIdentity init = ProcessIdentity.of(restored.pid())
        .orElseGet(() -> new ProcessIdentity(restored.pid(), -1));
    rec = rec.toBuilder().setPid(restored.pid()).setPidStartTicks(init.startTicks())
        .setState(VhostState.VHOST_STATE_RUNNING).setExitCode(0).setExitSignal(0).build();
    save(rec);
    List<byte[]> inflight = readInflight(image.criuDir(), ckpt);
    if (inflight.isEmpty()) {
      restoredInflight.remove(rec.getVhostId());
    } else {
      restoredInflight.put(rec.getVhostId(), inflight);
    }
    log.info("{}: vhost {} restored from {} in {} ms, init pid {}; {} packets were in flight "
        + "towards it", who, rec.getVhostId(), ckpt, restored.criuMillis(), restored.pid(),
        inflight.size());
    return RestoreVhostResponse.newBuilder().setPlacement(placement(rec))
        .setOutputOffset(rollback.size()).setCriuMs(restored.criuMillis())
        .setInflightPackets(inflight.size()).build();
  }

  /** The packets that were in flight towards a vhost at its checkpoint (verified image). */
  private static List<byte[]> readInflight(Path criuDir, String ckpt) {
    Path f = criuDir.resolve(INFLIGHT_IMAGE);
    if (!Files.exists(f)) {
      return List.of();
    }
    try {
      return InflightPackets.parseFrom(Files.readAllBytes(f)).getPacketsList().stream()
          .map(com.google.protobuf.ByteString::toByteArray).toList();
    } catch (IOException e) {
      // Verified against the manifest just before: only a bug or the disk can get here.
      throw DurableFiles.failure("cannot read the in-flight packets of " + ckpt, e);
    }
  }

  /**
   * Writes the packets that were in flight towards a restored vhost at its checkpoint into its
   * network, as if they arrived now: TCP takes what it has not seen and acknowledges it, and
   * drops as a duplicate anything it already has. Without this, the senders' TCP would send
   * them again after a retransmission timeout.
   */
  private void injectInflight(String vhostId) {
    List<byte[]> packets = restoredInflight.remove(vhostId);
    if (packets == null) {
      return;
    }
    if (overlay == null) {
      log.warn("{}: {} packets in flight towards {} not re-injected: this node has no overlay "
          + "(TCP will send them again)", who, packets.size(), vhostId);
      return;
    }
    try {
      overlay.injectLocal(packets);
      log.info("{}: re-injected {} packets in flight towards {} at its checkpoint", who,
          packets.size(), vhostId);
    } catch (IOException e) {
      log.warn("{}: cannot re-inject the packets in flight towards {} ({}); TCP will send them "
          + "again", who, vhostId, e.getMessage());
    }
  }

  /** A record for a vhost that ran on another node, made from its (verified) manifest. */
  private VhostRecord adopt(String vhostId, ImageManifest m, String ckpt) {
    VhostRecord rec = VhostRecord.newBuilder().setVhostId(vhostId).setJobId(m.getJobId())
        .setHostname(m.getHostname()).setSpec(m.getSpec()).setLogPath(m.getOutputLogPath())
        .setStatusPath(m.getStatusPath()).setInitPath(m.getInitPath())
        .setAddress(m.getAddress()).setHostVeth(m.getAddress().isEmpty() ? ""
            : VhostNetwork.hostVeth(vhostId))
        .setState(VhostState.VHOST_STATE_STOPPED).build();
    try {
      Files.createDirectories(vhostDir(vhostId));
      Files.createDirectories(Path.of(m.getStatusPath()).getParent());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot adopt vhost " + vhostId, e);
    }
    save(rec);
    log.info("{}: adopted vhost {} of job {} from checkpoint {}", who, vhostId, m.getJobId(), ckpt);
    return rec;
  }

  // ---------------------------------------------------------------- job network, images

  /**
   * Where every vhost of a job lives: remote ones are routed through the overlay. Then the
   * job's local vhosts may start their commands.
   */
  public void configureJobNetwork(ConfigureJobNetworkRequest req) {
    Ids.requireJob(req.getJobId());
    boolean remote = req.getVhostsList().stream().anyMatch(v -> !v.getNode().equals(config.node()));
    if (remote) {
      if (overlay == null) {
        throw CohortException.precondition("node %s has no overlay: vhosts of job %s on other "
            + "nodes cannot be reached from it", config.node(), req.getJobId());
      }
      overlay.configureJob(VhostNetwork.tableOf(req.getVhosts(0).getAddress()),
          req.getVhostsList().stream().map(v -> new VhostOverlay.VhostRoute(v.getAddress(),
              v.getNode(), v.getOverlayAddress())).toList());
    }
    for (Path d : localVhostDirs(req.getJobId())) {
      injectInflight(d.getFileName().toString());
      try {
        Files.writeString(d.resolve("net-ready"), "");
      } catch (IOException e) {
        throw DurableFiles.failure("cannot start the vhost in " + d, e);
      }
    }
  }

  private List<Path> localVhostDirs(String jobId) {
    try (var s = Files.list(config.vhostsDir())) {
      return s.filter(d -> d.getFileName().toString().startsWith(jobId + "-")).toList();
    } catch (IOException e) {
      return List.of();
    }
  }

  /** Where this node's overlay listens ("" when it has none). */
  public String overlayAddress() {
    if (overlay == null) {
      return "";
    }
    return overlay.address().getHostString() + ":" + overlay.address().getPort();
  }

  /** Streams a committed image to another node's agent (see {@link ImageTransfer}). */
  public void exportImage(String ckpt, String vhostId, Consumer<ImageChunk> sink,
      BooleanSupplier cancelled) {
    transfer.export(ckpt, vhostId, sink, cancelled);
  }

  /** Fetches an image from another node's agent (see {@link ImageTransfer}). */
  public ImportImageResponse importImage(ImportImageRequest req) {
    return transfer.importImage(req);
  }

  /** A rolled-back output log, and how to put it back if the restore fails. */
  private record LogRollback(Path log, long size, Path saved) {
    void undo() {
      if (saved == null) {
        return;
      }
      try {
        Files.write(log, Files.readAllBytes(saved), StandardOpenOption.APPEND);
        Files.delete(saved);
      } catch (IOException e) {
        LoggerFactory.getLogger(NodeAgent.class).error("cannot put back {} into {}: {}", saved,
            log, e.toString());
      }
    }
  }

  /**
   * Brings the output log back to its size at the checkpoint (CRIU refuses a file whose size
   * changed, and restarting from a checkpoint means its later output never happened). The
   * bytes cut off are kept beside the log, so no output is ever lost.
   */
  private LogRollback rollBackLog(Path logFile, long want, String ckpt) {
    try (RandomAccessFile f = new RandomAccessFile(logFile.toFile(), "rw")) {
      long have = f.length();
      if (have <= want) {
        return new LogRollback(logFile, want, null);
      }
      Path saved = logFile.resolveSibling(logFile.getFileName() + ".after-" + ckpt + "-"
          + System.currentTimeMillis());
      try (InputStream in = Files.newInputStream(logFile)) {
        in.skipNBytes(want);
        Files.copy(in, saved, StandardCopyOption.REPLACE_EXISTING);
      }
      DurableFiles.fsync(saved);
      f.setLength(want);
      f.getFD().sync();
      log.info("{}: output log rolled back to checkpoint {} ({} bytes kept in {})", who, ckpt,
          have - want, saved);
      return new LogRollback(logFile, want, saved);
    } catch (IOException e) {
      throw DurableFiles.failure("cannot roll back " + logFile, e);
    }
  }

  public void deleteImage(String ckpt, String vhostId) {
    images.delete(Ids.requireCheckpoint(ckpt), Ids.requireVhost(vhostId));
  }

  // ---------------------------------------------------------------- output

  /**
   * Sends the output log from {@code offset}; with follow, keeps sending until the vhost is no
   * longer running (then sends the rest) or {@code cancelled} says stop.
   */
  public void readOutput(ReadOutputRequest req, Consumer<OutputChunk> sink, BooleanSupplier cancelled) {
    VhostRecord rec = load(req.getVhostId());
    Path logFile = Path.of(rec.getLogPath());
    long offset = Math.max(0, req.getOffset());
    byte[] buf = new byte[READ_CHUNK];
    try (RandomAccessFile f = new RandomAccessFile(logFile.toFile(), "r")) {
      boolean finalPass = false;
      while (!cancelled.getAsBoolean()) {
        boolean running = req.getFollow()
            && refresh(load(req.getVhostId())).getState() == VhostState.VHOST_STATE_RUNNING;
        long len = f.length();
        if (len < offset) {
          offset = len; // rolled back by a restart from an older checkpoint
        }
        while (offset < len) {
          f.seek(offset);
          int n = f.read(buf, 0, (int) Math.min(buf.length, len - offset));
          if (n <= 0) {
            break;
          }
          sink.accept(OutputChunk.newBuilder().setOffset(offset)
              .setData(com.google.protobuf.ByteString.copyFrom(buf, 0, n)).build());
          offset += n;
        }
        if (!running) {
          if (req.getFollow() && !finalPass) {
            finalPass = true; // one more pass picks up what was written just before the end
            continue;
          }
          return;
        }
        Thread.sleep(100);
      }
    } catch (java.io.FileNotFoundException e) {
      throw CohortException.notFound("output log %s of vhost %s is missing", logFile,
          req.getVhostId());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot read " + logFile, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  // ---------------------------------------------------------------- records

  private VhostRecord requireRunning(VhostRecord rec, String what) {
    if (rec.getState() != VhostState.VHOST_STATE_RUNNING) {
      throw CohortException.precondition("cannot %s job %s: it is not running (%s)", what,
          rec.getJobId(), describeState(rec));
    }
    return rec;
  }

  static String describeState(VhostRecord rec) {
    return switch (rec.getState()) {
      case VHOST_STATE_EXITED -> rec.getExitSignal() != 0
          ? "killed by signal " + rec.getExitSignal() : "exited with status " + rec.getExitCode();
      case VHOST_STATE_STOPPED -> "stopped by a checkpoint";
      case VHOST_STATE_KILLED -> "killed";
      case VHOST_STATE_LOST -> "lost: its processes vanished without an exit status";
      default -> rec.getState().name();
    };
  }

  /** Re-checks a RUNNING record against the process table and the init's status file. */
  private VhostRecord refresh(VhostRecord rec) {
    if (rec.getState() != VhostState.VHOST_STATE_RUNNING || identity(rec).isAlive()) {
      return rec;
    }
    if (dumps.keySet().stream().anyMatch(k -> k.endsWith("/" + rec.getVhostId()))) {
      return rec; // being stopped by a checkpoint right now
    }
    VhostRecord.Builder b = rec.toBuilder().setPid(0);
    VhostRecord latest = load(rec.getVhostId());
    if (latest.getState() != VhostState.VHOST_STATE_RUNNING || latest.getPid() != rec.getPid()) {
      return latest; // another process of this node changed it meanwhile
    }
    try {
      String[] status = Files.readString(Path.of(rec.getStatusPath())).trim().split(" ");
      b.setState(VhostState.VHOST_STATE_EXITED);
      if (status[0].equals("signaled")) {
        b.setExitSignal(Integer.parseInt(status[1]));
      } else {
        b.setExitCode(Integer.parseInt(status[1]));
      }
    } catch (IOException | RuntimeException e) {
      b.setState(VhostState.VHOST_STATE_LOST);
    }
    VhostRecord updated = b.build();
    save(updated);
    dropVeth(updated);
    return updated;
  }

  /**
   * Removes the node side of a dead vhost's veth. The vhost's network namespace may outlive
   * its processes, and its veth, still holding the vhost's address, would answer a later
   * incarnation's connections with resets.
   */
  private void dropVeth(VhostRecord rec) {
    if (!rec.getAddress().isEmpty() && config.vhostNetworking()) {
      VhostNetwork.removeStale(rec.getVhostId());
    }
  }

  private VhostRecord load(String vhostId) {
    Path f = vhostDir(Ids.requireVhost(vhostId)).resolve("record.json");
    if (!Files.exists(f)) {
      throw CohortException.notFound("vhost %s is not known on node %s", vhostId, config.node());
    }
    return ProtoJson.read(f, VhostRecord.newBuilder()).build();
  }

  private void save(VhostRecord rec) {
    ProtoJson.write(vhostDir(rec.getVhostId()).resolve("record.json"), rec);
  }

  private Path vhostDir(String vhostId) {
    return config.vhostsDir().resolve(vhostId);
  }

  private VhostPlacement placement(VhostRecord rec) {
    return VhostPlacement.newBuilder().setVhostId(rec.getVhostId()).setNode(config.node())
        .setAddress(rec.getAddress())
        .setPid(rec.getState() == VhostState.VHOST_STATE_RUNNING ? rec.getPid() : 0)
        .setHostname(rec.getHostname()).build();
  }

  private static ProcessIdentity identity(VhostRecord rec) {
    return new ProcessIdentity(rec.getPid(), rec.getPidStartTicks());
  }

  /** The job's environment plus what Open MPI needs to run in a vhost. */
  private static Map<String, String> jobEnvironment(Iterable<String> env) {
    Map<String, String> m = new HashMap<>();
    for (String kv : env) {
      int eq = kv.indexOf('=');
      if (eq > 0) {
        m.put(kv.substring(0, eq), kv.substring(eq + 1));
      }
    }
    if (LibC.INSTANCE.geteuid() == 0) {
      m.putIfAbsent("OMPI_ALLOW_RUN_AS_ROOT", "1");
      m.putIfAbsent("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    // A vhost often has fewer cores than ranks (and CRIU-restored jobs must not depend on the
    // node's core count): let mpirun place more ranks than cores.
    m.putIfAbsent("OMPI_MCA_rmaps_base_oversubscribe", "1");
    // No binding of ranks to cores: each vhost's orted would bind its ranks to what it thinks
    // are its first cores, so two vhosts on one node pile their ranks onto the same cores
    // (an MPI ping-pong between them took 8 ms a round trip instead of 20 µs); and CRIU would
    // restore a binding to cores the restart node may not have.
    m.putIfAbsent("OMPI_MCA_hwloc_base_binding_policy", "none");
    m.putIfAbsent("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    return m;
  }

  /** Resident memory of every process of the vhost (an estimate of its image size). */
  private static long residentBytes(long initPid) {
    long total = 0;
    for (ProcessHandle p : ProcessHandle.of(initPid).map(h -> java.util.stream.Stream
        .concat(java.util.stream.Stream.of(h), h.descendants()).toList()).orElse(java.util.List.of())) {
      try {
        String[] f = Files.readString(Path.of("/proc", Long.toString(p.pid()), "statm")).split(" ");
        total += Long.parseLong(f[1]) * 4096;
      } catch (IOException | RuntimeException gone) {
        // the process ended meanwhile
      }
    }
    return total;
  }

  private volatile String criuVersion;

  /** `criu --version`, asked once (heartbeats and manifests need it often). */
  private String criuVersion() {
    if (criuVersion == null) {
      try {
        criuVersion = criu.version();
      } catch (CriuException e) {
        return "unavailable: " + e.getMessage();
      }
    }
    return criuVersion;
  }

  private static String kernel() {
    try {
      return Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip();
    } catch (IOException e) {
      return "unknown";
    }
  }

  /**
   * Copies a native program (cohort-init, cohort-rsh) to a path named after its content. CRIU
   * restores a process by mapping the same binary file again, and refuses it if the file
   * changed: a rebuilt native/build must never break the restart of an older checkpoint.
   */
  private static Path installContentAddressed(Path source, Path home, String name) {
    if (!Files.isRegularFile(source)) {
      return source; // VhostLauncher reports it missing, with the fix
    }
    try {
      String sha = ImageStore.digest(source, name).getSha256().substring(0, 16);
      Path target = home.resolve("bin").resolve(name + "-" + sha);
      if (!Files.exists(target)) {
        Files.createDirectories(target.getParent());
        Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp");
        Files.copy(source, tmp, StandardCopyOption.REPLACE_EXISTING);
        tmp.toFile().setExecutable(true, false);
        DurableFiles.fsync(tmp);
        DurableFiles.rename(tmp, target);
      }
      return target;
    } catch (IOException e) {
      throw DurableFiles.failure("cannot install " + source, e);
    }
  }

  private static Path installActionScript(Path home) {
    Path script = home.resolve("bin").resolve("criu-action.sh");
    try (InputStream in = NodeAgent.class.getResourceAsStream("criu-action.sh")) {
      byte[] want = in.readAllBytes();
      if (!Files.exists(script) || !java.util.Arrays.equals(Files.readAllBytes(script), want)) {
        DurableFiles.writeAtomically(script, want);
      }
      script.toFile().setExecutable(true, true);
      return script;
    } catch (IOException e) {
      throw DurableFiles.failure("cannot install " + script, e);
    }
  }
}
