package io.cohort.agent;

import io.cohort.agent.ParticipantDump.State;
import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.FaultPoints;
import io.cohort.common.Ids;
import io.cohort.proto.v1.AbandonedDump;
import io.cohort.proto.v1.CheckpointDecision;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.TrackedFiles;
import io.cohort.proto.v1.VhostRecord;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.FutureTask;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's half of the checkpoint barrier: prepare, dump, resume, seal, finish (commit or abort)
 * of this node's vhosts, each dump one {@link ParticipantDump} state machine, ended by {@link
 * DumpEndings}.
 *
 * <p>Rules kept here:
 *
 * <ul>
 *   <li>The fences of {@link ActiveDumps}: one dump per vhost, a closed epoch never dumped again.
 *   <li>Every failure inside a phase aborts the dump in one place ({@link #failing}): the tasks run
 *       on, the pending image goes, the coordinator is told.
 *   <li>No dump waits for the coordinator for ever: when its {@link DecisionLease} runs out, the
 *       agent aborts it on its own ({@link DumpEndings#expire}, the EXPIRED transition).
 *   <li>An agent that dies leaves no job frozen: CRIU's hook gives up once the agent process it was
 *       started by is gone (pid and start time in its environment), and the next agent removes the
 *       abandoned pending images and reports them ({@link #cleanUpAfterPredecessor}).
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
  private final DumpFailures failures;
  private final FileTracker files;
  private final TaskRelease release;
  private final ImageSealer sealer;
  private final DecisionLease lease;
  private final ActiveDumps dumps;
  private final DumpEndings endings;

  /** Captures of the job's files, running beside CRIU's dump (I/O: a thread each). */
  private final ExecutorService captures =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "file-capture");
            t.setDaemon(true);
            return t;
          });

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
    this.config = config;
    this.who = "agent " + config.node();
    this.records = records;
    this.images = images;
    this.criu = criu;
    this.cuts = cuts;
    this.actionScript = actionScript;
    this.self = self;
    this.failures = new DumpFailures(config, images);
    this.files = new FileTracker(List.of(config.home(), config.imagesDir()));
    this.release = new TaskRelease(config.criuTimeout(), images);
    this.sealer = new ImageSealer(config.node(), images, criuVersion);
    this.dumps = new ActiveDumps(config.node());
    this.endings = new DumpEndings(config.node(), records, images, cuts, release, dumps, stopped);
    this.lease = endings.lease;
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
          if (d.outcome() == DumpSession.Outcome.DUMPED) {
            FaultPoints.reach("agent.dump", dump.ckpt + "/" + dump.record.getVhostId());
          }
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

  /** Checks the fences, then (under them) creates the pending image and starts CRIU. */
  private ParticipantDump register(DumpVhostRequest req) {
    String ckpt = Ids.requireCheckpoint(req.getCheckpointId());
    VhostRecord rec = records.requireRunning(req.getVhostId(), "checkpoint");
    return dumps.open(ckpt, rec.getVhostId(), () -> start(ckpt, rec, req));
  }

  private ParticipantDump start(String ckpt, VhostRecord rec, DumpVhostRequest req) {
    String vhost = rec.getVhostId();
    Path pending = images.createPending(ckpt, vhost);
    Map<String, String> env = new HashMap<>(CriuSession.agentEnv(self));
    env.put("COHORT_HOOK_DIR", pending.resolve("hook").toString());
    env.put("COHORT_LOG_PATH", rec.getLogPath());
    ChannelCuts.Cut cut = cuts.open(ckpt, rec, req.getEpoch(), records.runningOfJob(rec));
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
    return new ParticipantDump(
        ckpt, rec, req, session, cut, lease, config.leaseAfter(req.getDecisionWithinMs()), who);
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
    ParticipantDump dump = dumps.require(req.getCheckpointId(), req.getVhostId());
    if (dump.stop) {
      throw CohortException.precondition(
          "checkpoint %s stops the job: its vhosts are not " + "resumed", req.getCheckpointId());
    }
    dump.renewLease(config.leaseAfter(req.getDecisionWithinMs()));
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
    ParticipantDump dump = dumps.require(req.getCheckpointId(), req.getVhostId());
    dump.renewLease(config.leaseAfter(req.getDecisionWithinMs()));
    return failing(
        dump,
        () -> {
          dump.advance(
              "seal", Map.of(State.HELD, State.HELD_SEALING, State.RESUMED, State.RESUMED_SEALING));
          long t0 = System.nanoTime();
          // What a restore would refuse is refused now, while the job runs on: a set-id program
          // started after the prepare's check (RunningTasks) is in the image. It reads a few
          // small files of the image while the sealer digests all of them: beside it, not before.
          FutureTask<Void> credentials =
              new FutureTask<>(
                  () -> {
                    ImageCredentials.check(
                        dump.record.getOwner(),
                        images
                            .pendingDir(dump.ckpt, dump.record.getVhostId())
                            .resolve(ImageStore.CRIU_DIR),
                        dump.record.getInitPath(),
                        "checkpoint " + dump.ckpt + ", vhost " + dump.record.getVhostId());
                    return null;
                  });
          if (JobOwner.isRoot(dump.record.getOwner())) {
            credentials.run(); // nothing to read: root's images are not checked
          } else {
            Thread t = new Thread(credentials, "image-credentials " + dump);
            t.setDaemon(true);
            t.start();
          }
          ImageSealer.Sealed sealed = sealer.seal(dump);
          awaitCheck(credentials);
          synchronized (dump) {
            // Published under the dump's monitor: an abort either comes first (nothing published)
            // or finds the image published and discards it there.
            dump.advance(
                "seal",
                Map.of(State.HELD_SEALING, State.HELD_SEALED, State.RESUMED_SEALING, State.SEALED));
            images.publish(dump.ckpt, dump.record.getVhostId());
          }
          long ms = (System.nanoTime() - t0) / 1_000_000;
          log.info(
              "{}: sealed in {} ms ({} packets in flight towards it recorded)",
              dump,
              ms,
              sealed.inflight().size());
          return sealer.response(sealed, ms);
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
    ParticipantDump dump = dumps.find(ckpt, vhost, abort);
    boolean stop = req.getDecision() == CheckpointDecision.CHECKPOINT_DECISION_COMMIT_STOP;
    if (dump == null || dump.state() == State.EXPIRED) {
      // No dump waits (any more): it never came, it ended, or its lease ran out. An abort removes
      // whatever image got that far; a commit finds its image published here, or fails.
      if (abort) {
        images.discard(ckpt, vhost);
        return FinishCheckpointResponse.getDefaultInstance();
      }
      return endings.committedLate(ckpt, vhost, stop);
    }
    if (abort) {
      return FinishCheckpointResponse.newBuilder().setFreezeMs(endings.abort(dump)).build();
    }
    ParticipantDump committing = dump;
    return failing(dump, () -> endings.commit(committing, stop));
  }

  // ------------------------------------------------------------------ the lease

  /**
   * At this agent's start: removes the pending images of dumps a predecessor never finished and
   * reports them to the coordinator as an expired lease would (CRIU's hook let the tasks go when
   * that agent died; {@link Vhosts#resumeStopped} wakes tasks left stopped).
   */
  void cleanUpAfterPredecessor() {
    for (String image : images.removeAbandonedPending()) {
      if (swept.add(image)) { // reported once, however often its late files are swept
        String[] p = image.split("/", 2);
        lease.abandoned(p[0], p[1], "left unfinished by an agent that stopped", false);
      }
    }
  }

  /** Pending images of a predecessor removed so far (checkpoint/vhost). */
  private final Set<String> swept = ConcurrentHashMap.newKeySet();

  /** The dumps this agent ended without the coordinator's decision, not yet reported. */
  List<AbandonedDump> abandoned() {
    return lease.unreported();
  }

  /** A heartbeat carrying {@code sent} was answered. */
  void reported(List<AbandonedDump> sent) {
    lease.reported(sent);
  }

  // ------------------------------------------------------------------ failure

  /**
   * Runs one phase of {@code dump}; any failure aborts the dump (the tasks run on, the image goes)
   * before it is thrown, so that no exception can leave a vhost frozen.
   */
  private <T> T failing(ParticipantDump dump, PhaseBody<T> body) {
    try {
      return body.run();
    } catch (IOException | RuntimeException e) {
      try {
        endings.abort(dump);
        if (dump.state() == State.ABORTED) {
          // An abort that came while this phase was writing (the coordinator's, during a seal)
          // discarded the image first; the seal's writes made its directories again (the job's
          // files copied in): what they left goes too, or it would wait for the sweep's 10 min.
          images.discard(dump.ckpt, dump.record.getVhostId());
        }
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

  /** Waits for a check run beside the phase's work; its refusal is the phase's. */
  private static void awaitCheck(FutureTask<Void> check) {
    try {
      check.get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      throw CohortException.internal("the image's check failed: " + e.getCause(), e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw CohortException.internal("interrupted while checking the image", e);
    }
  }

  @FunctionalInterface
  private interface PhaseBody<T> {
    T run() throws IOException;
  }
}
