package io.cohort.agent;

import io.cohort.agent.ParticipantDump.State;
import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.Ids;
import io.cohort.proto.v1.CheckpointDecision;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.TrackedFiles;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's half of the checkpoint barrier: prepare, dump, resume, seal, finish (commit or abort)
 * of this node's vhosts, each dump one {@link ParticipantDump} state machine.
 *
 * <p>Rules kept here:
 *
 * <ul>
 *   <li>A vhost has at most one dump at a time, and an epoch once closed on a vhost (committed or
 *       aborted, even before its dump arrived) is never dumped again there: a late DumpVhost of an
 *       aborted epoch is refused, a late answer of an older epoch never touches a newer dump.
 *   <li>Every failure inside a phase aborts the dump in one place ({@link #failing}): the tasks run
 *       on, the pending image goes, the coordinator is told.
 *   <li>An agent that dies leaves no job frozen: CRIU's hook gives up once the agent process it was
 *       started by is gone (pid and start time in its environment), and the next agent removes the
 *       abandoned pending images.
 * </ul>
 */
final class CheckpointParticipant {
  private static final Logger log = LoggerFactory.getLogger(CheckpointParticipant.class);

  private final AgentConfig config;
  private final String who;
  private final VhostRecords records;
  private final ImageStore images;
  private final Criu criu;
  private final ChannelCuts cuts;
  private final Path actionScript;
  private final ProcessIdentity self;
  private final Supplier<String> criuVersion;
  private final DumpFailures failures;
  private final FileTracker files;
  private final TaskRelease release;

  /**
   * Told of each vhost a --stop ended (its link and, with the job's last, the job's network go).
   */
  private final Consumer<VhostRecord> stopped;

  /** Captures of the job's files, running beside CRIU's dump (I/O: a thread each). */
  private final ExecutorService captures =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "file-capture");
            t.setDaemon(true);
            return t;
          });

  /** The dump in progress of each vhost, by vhost id. Guarded by {@code this}. */
  private final Map<String, ParticipantDump> active = new HashMap<>();

  /** The newest epoch closed (committed or aborted) on each vhost. Guarded by {@code this}. */
  private final Map<String, Long> closedEpoch = new HashMap<>();

  CheckpointParticipant(
      AgentConfig config,
      VhostRecords records,
      ImageStore images,
      Criu criu,
      ChannelCuts cuts,
      Path actionScript,
      ProcessIdentity self,
      Supplier<String> criuVersion,
      Consumer<VhostRecord> stopped) {
    this.stopped = stopped;
    this.config = config;
    this.who = "agent " + config.node();
    this.records = records;
    this.images = images;
    this.criu = criu;
    this.cuts = cuts;
    this.actionScript = actionScript;
    this.self = self;
    this.criuVersion = criuVersion;
    this.failures = new DumpFailures(config, images);
    this.files = new FileTracker(List.of(config.home(), config.imagesDir()));
    this.release = new TaskRelease(config.criuTimeout(), images);
  }

  // ------------------------------------------------------------------ dump

  /**
   * Freezes and dumps one vhost; answers once CRIU has written the image, with the vhost still
   * frozen. {@link #resume} or {@link #finish} releases it.
   */
  DumpVhostResponse dump(DumpVhostRequest req) {
    ParticipantDump dump = register(req);
    Path criuDir =
        images.pendingDir(dump.ckpt, dump.record.getVhostId()).resolve(ImageStore.CRIU_DIR);
    AtomicReference<CompletableFuture<TrackedFiles>> capture = new AtomicReference<>();
    return failing(
        dump,
        () -> {
          DumpSession.Dumped d =
              dump.session.awaitDumped(
                  () -> {
                    if (dump.cut != null) {
                      dump.cut.networkLocked(dump.record.getVhostId());
                    }
                    // The tasks are frozen from here on: the job's files are as they were at
                    // the cut, so they are captured while CRIU writes the image.
                    if (capture.get() == null) {
                      capture.set(
                          CompletableFuture.supplyAsync(
                              () -> files.capture(dump.record.getPid(), criuDir), captures));
                    }
                  });
          if (dump.state() == State.ABORTED) {
            throw dump.refused("dump");
          }
          if (d.outcome() != DumpSession.Outcome.DUMPED || d.logSize() < 0) {
            throw failures.explain(dump, d);
          }
          // The hook holds the tasks frozen: the job's other logs are at their size of the cut.
          dump.dumped(d.logSize(), JobFiles.atDump(dump.record.getJobFilesList()));
          // Still frozen by the hook, if the capture could not start at the network lock.
          TrackedFiles tracked =
              capture.get() != null
                  ? joinCapture(capture.get())
                  : files.capture(dump.record.getPid(), criuDir);
          if (tracked.getFilesCount() > 0) {
            log.info(
                "{}: {} open files tracked in {} ms, {} MB copied",
                dump,
                tracked.getFilesCount(),
                tracked.getCaptureMs(),
                tracked.getBytesCopied() >> 20);
          }
          long bytes =
              LocalImageStore.totalBytes(
                  images
                      .pendingDir(dump.ckpt, dump.record.getVhostId())
                      .resolve(ImageStore.CRIU_DIR));
          long ms = dump.session.millisToDumped();
          log.info("{}: dumped in {} ms, {} MB", dump, ms, bytes >> 20);
          return DumpVhostResponse.newBuilder().setCriuMs(ms).setImageBytes(bytes).build();
        });
  }

  /** Checks the fences, creates the pending image and starts CRIU; all under the lock. */
  private synchronized ParticipantDump register(DumpVhostRequest req) {
    String ckpt = Ids.requireCheckpoint(req.getCheckpointId());
    VhostRecord rec = records.requireRunning(req.getVhostId(), "checkpoint");
    String vhost = rec.getVhostId();
    long epoch = Ids.epochOfCheckpoint(ckpt);
    if (epoch <= closedEpoch.getOrDefault(vhost, 0L)) {
      throw new CohortException(
          CohortException.Kind.ABORTED,
          "checkpoint "
              + ckpt
              + " was already ended on vhost "
              + vhost
              + " (aborted before its dump, or older than "
              + "the newest checkpoint there)");
    }
    ParticipantDump running = active.get(vhost);
    if (running != null) {
      throw CohortException.precondition(
          "vhost %s is already being checkpointed (%s)", vhost, running.ckpt);
    }
    Path pending = images.createPending(ckpt, vhost);
    Map<String, String> env = new HashMap<>(CriuSession.agentEnv(self));
    env.put("COHORT_HOOK_DIR", pending.resolve("hook").toString());
    env.put("COHORT_LOG_PATH", rec.getLogPath());
    ChannelCuts.Cut cut = cuts.open(ckpt, rec, req.getEpoch(), localVhostsOfJob(rec));
    DumpSession session;
    try {
      if (cut != null) {
        cut.begin();
      }
      session =
          DumpSession.start(
              pending.resolve("hook"),
              config.criuTimeout(),
              () ->
                  criu.startDump(
                      new Criu.DumpSpec(
                          rec.getPid(),
                          pending.resolve(ImageStore.CRIU_DIR),
                          pending,
                          actionScript,
                          env,
                          !req.getStop(),
                          VhostNetwork.dumpOptions(rec.getAddress()))));
    } catch (IOException | RuntimeException e) {
      images.discard(ckpt, vhost);
      if (cut != null) {
        cut.abort();
        cuts.forget(ckpt);
      }
      throw e instanceof IOException io
          ? DurableFiles.failure("cannot start criu", io)
          : (RuntimeException) e;
    }
    ParticipantDump dump = new ParticipantDump(ckpt, rec, req, session, cut, who);
    active.put(vhost, dump);
    return dump;
  }

  /** The job's running vhosts on this node: they all take part in its checkpoint. */
  private Set<String> localVhostsOfJob(VhostRecord rec) {
    Set<String> local = new TreeSet<>();
    for (String id : records.ofJob(rec.getJobId())) {
      try {
        if (records.observe(id).getState() == VhostState.VHOST_STATE_RUNNING) {
          local.add(id);
        }
      } catch (CohortException notAVhost) {
        // a directory without a record (any more)
      }
    }
    local.add(rec.getVhostId());
    return local;
  }

  private static TrackedFiles joinCapture(CompletableFuture<TrackedFiles> capture) {
    try {
      return capture.join();
    } catch (CompletionException e) {
      throw e.getCause() instanceof RuntimeException re ? re : e;
    }
  }

  // ------------------------------------------------------------------ resume

  /** Checkpoint-and-continue: every vhost is dumped, so this one may run again. */
  ResumeVhostResponse resume(ResumeVhostRequest req) {
    ParticipantDump dump = active(req.getCheckpointId(), req.getVhostId());
    if (dump.stop) {
      throw CohortException.precondition(
          "checkpoint %s stops the job: its vhosts are not " + "resumed", req.getCheckpointId());
    }
    return failing(
        dump,
        () -> {
          synchronized (dump) {
            dump.advance(
                "resume",
                Map.of(
                    State.HELD,
                    State.RESUMED,
                    State.HELD_SEALING,
                    State.RESUMED_SEALING,
                    State.HELD_SEALED,
                    State.SEALED));
            release.decide(dump, true);
          }
          return ResumeVhostResponse.newBuilder().setFreezeMs(release.await(dump, true)).build();
        });
  }

  // ------------------------------------------------------------------ seal

  /**
   * Digests and syncs the image, writes its manifest durably and publishes it (moves it to its
   * committed place). From here the image is complete and durable; it becomes a checkpoint when the
   * coordinator writes the record, and is discarded if the epoch aborts.
   */
  SealImageResponse seal(SealImageRequest req) {
    ParticipantDump dump = active(req.getCheckpointId(), req.getVhostId());
    return failing(
        dump,
        () -> {
          dump.advance(
              "seal", Map.of(State.HELD, State.HELD_SEALING, State.RESUMED, State.RESUMED_SEALING));
          long t0 = System.nanoTime();
          VhostRecord rec = dump.record;
          Path pending = images.pendingDir(dump.ckpt, rec.getVhostId());
          ImageManifest.Builder m =
              ImageManifest.newBuilder()
                  .setFormatVersion(1)
                  .setCheckpointId(dump.ckpt)
                  .setJobId(rec.getJobId())
                  .setEpoch(dump.epoch)
                  .setVhostId(rec.getVhostId())
                  .setHostname(rec.getHostname())
                  .setCriuVersion(criuVersion.get())
                  .setKernel(NodeAgent.kernel())
                  .setSpec(dump.request.getSpec())
                  .setNode(config.node())
                  .setCreatedUnixMs(System.currentTimeMillis())
                  .setOutputLogPath(rec.getLogPath())
                  .setOutputLogSize(dump.logSize())
                  .setDumpedPid(rec.getPid())
                  .setStatusPath(rec.getStatusPath())
                  .setInitPath(rec.getInitPath())
                  .setAddress(rec.getAddress())
                  .addAllJobFiles(dump.jobFiles());
          TrackedFiles tracked = FileTracker.read(pending.resolve(ImageStore.CRIU_DIR));
          List<byte[]> inflight =
              dump.cut == null ? List.of() : dump.cut.recordingFor(rec.getAddress());
          if (dump.cut != null) {
            InflightImage.write(
                pending.resolve(ImageStore.CRIU_DIR),
                rec.getJobId(),
                dump.epoch,
                inflight,
                dump.ckpt);
          }
          JobFiles.intoImage(dump.jobFiles(), pending.resolve(ImageStore.CRIU_DIR));
          Map.Entry<ImageManifest, String> sealed = images.seal(pending, m);
          synchronized (dump) {
            // Published under the dump's monitor: an abort either comes first (nothing published)
            // or finds the image published and discards it there.
            dump.advance(
                "seal",
                Map.of(State.HELD_SEALING, State.HELD_SEALED, State.RESUMED_SEALING, State.SEALED));
            images.publish(dump.ckpt, rec.getVhostId());
          }
          long ms = (System.nanoTime() - t0) / 1_000_000;
          long inflightBytes = inflight.stream().mapToLong(b -> b.length).sum();
          log.info(
              "{}: sealed in {} ms ({} packets in flight towards it recorded)",
              dump,
              ms,
              inflight.size());
          return SealImageResponse.newBuilder()
              .setManifest(sealed.getKey())
              .setManifestSha256(sealed.getValue())
              .setSealMs(ms)
              .setInflightPackets(inflight.size())
              .setInflightBytes(inflightBytes)
              .setImageStoreId(images.id())
              .setTrackedFiles(tracked.getFilesCount())
              .setTrackedBytesCopied(tracked.getBytesCopied())
              .setTrackedCaptureMs(tracked.getCaptureMs())
              .build();
        });
  }

  // ------------------------------------------------------------------ finish

  /**
   * Commit (the image is already sealed in place; for --stop, end the vhost) or abort (discard the
   * image; a vhost still frozen carries on). An abort is idempotent and may come before the dump it
   * aborts; an answer for an older epoch never touches a newer dump.
   */
  FinishCheckpointResponse finish(FinishCheckpointRequest req) {
    String ckpt = Ids.requireCheckpoint(req.getCheckpointId());
    String vhost = Ids.requireVhost(req.getVhostId());
    boolean abort = req.getDecision() == CheckpointDecision.CHECKPOINT_DECISION_ABORT;
    ParticipantDump dump;
    synchronized (this) {
      dump = active.get(vhost);
      if (dump != null && !dump.ckpt.equals(ckpt)) {
        dump = null; // a late answer about another epoch's dump
      }
      if (dump == null && abort) {
        // The dump, if it comes late, must not run; the image, if any got that far, goes.
        close(vhost, Ids.epochOfCheckpoint(ckpt));
      }
    }
    if (dump == null) {
      if (abort) {
        images.discard(ckpt, vhost);
        return FinishCheckpointResponse.getDefaultInstance();
      }
      throw CohortException.precondition(
          "no dump of %s/%s is waiting for a decision on %s", ckpt, vhost, config.node());
    }
    if (abort) {
      return FinishCheckpointResponse.newBuilder().setFreezeMs(abort(dump)).build();
    }
    boolean stop = req.getDecision() == CheckpointDecision.CHECKPOINT_DECISION_COMMIT_STOP;
    ParticipantDump committing = dump;
    return failing(dump, () -> commit(committing, stop));
  }

  private FinishCheckpointResponse commit(ParticipantDump dump, boolean stop) {
    if (stop != dump.stop) {
      throw CohortException.precondition(
          "cannot commit %s: the decision (stop=%s) does not " + "match the dump (stop=%s)",
          dump, stop, dump.stop);
    }
    boolean wasHeld;
    synchronized (dump) {
      if (!dump.state().sealed()) {
        throw CohortException.precondition(
            "cannot commit %s: its image is not sealed (%s)", dump, dump.state());
      }
      if (stop) {
        // Recorded before the tasks end, so that nobody takes the vhost for crashed.
        records.save(
            dump.record.toBuilder().setState(VhostState.VHOST_STATE_STOPPED).setPid(0).build());
      }
      wasHeld =
          dump.advance(
                  "commit",
                  Map.of(State.HELD_SEALED, State.COMMITTED, State.SEALED, State.COMMITTED))
              .held();
      if (wasHeld) {
        release.decide(dump, true);
      }
    }
    long freeze = 0;
    try {
      if (wasHeld) {
        freeze = release.await(dump, true);
      }
      if (stop) {
        ProcessIdentity init = VhostRecords.identity(dump.record);
        if (init.isAlive()) {
          init.kill();
        }
        stopped.accept(records.load(dump.record.getVhostId()));
      }
    } finally {
      done(dump);
    }
    log.info("{}: committed ({})", dump, stop ? "stopped" : "resumed");
    return FinishCheckpointResponse.newBuilder().setFreezeMs(freeze).build();
  }

  // ------------------------------------------------------------------ abort

  /**
   * Runs one phase of {@code dump}; any failure aborts the dump (the tasks run on, the image goes)
   * before it is thrown, so that no exception can leave a vhost frozen.
   */
  private <T> T failing(ParticipantDump dump, PhaseBody<T> body) {
    try {
      return body.run();
    } catch (IOException | RuntimeException e) {
      try {
        abort(dump);
      } catch (RuntimeException again) {
        e.addSuppressed(again);
      }
      if (e instanceof CohortException ce) {
        throw ce;
      }
      throw e instanceof IOException io
          ? DurableFiles.failure("checkpoint " + dump + " failed", io)
          : CohortException.internal("checkpoint " + dump + " failed: " + e, e);
    }
  }

  @FunctionalInterface
  private interface PhaseBody<T> {
    T run() throws IOException;
  }

  /** Aborts a dump (idempotent): lets held tasks go, discards the image. Returns the freeze. */
  private long abort(ParticipantDump dump) {
    State from;
    synchronized (dump) {
      from = dump.abort();
      if (from != null && from.held()) {
        release.decide(dump, false);
      }
    }
    if (from == null) {
      return 0; // already committed or aborted
    }
    long freeze = 0;
    try {
      if (dump.cut != null) {
        dump.cut.abort();
        cuts.forget(dump.ckpt);
      }
      if (from.held()) {
        freeze = release.await(dump, false);
      }
    } finally {
      done(dump);
      images.discard(dump.ckpt, dump.record.getVhostId());
    }
    log.info("{}: aborted, vhost carries on", dump);
    return freeze;
  }

  /** The dump is over: its session closes, its vhost may be dumped again for a newer epoch. */
  private void done(ParticipantDump dump) {
    dump.session.close();
    cuts.forget(dump.ckpt);
    synchronized (this) {
      active.remove(dump.record.getVhostId(), dump);
      close(dump.record.getVhostId(), dump.epoch);
    }
  }

  /** Guarded by {@code this}. */
  private void close(String vhost, long epoch) {
    closedEpoch.merge(vhost, epoch, Math::max);
  }

  private ParticipantDump active(String ckpt, String vhostId) {
    Ids.requireCheckpoint(ckpt);
    ParticipantDump dump;
    synchronized (this) {
      dump = active.get(vhostId);
    }
    if (dump == null || !dump.ckpt.equals(ckpt)) {
      throw CohortException.precondition(
          "no dump of %s/%s is in progress on %s", ckpt, vhostId, config.node());
    }
    return dump;
  }
}
