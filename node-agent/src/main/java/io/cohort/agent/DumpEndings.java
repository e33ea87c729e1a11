package io.cohort.agent;

import io.cohort.agent.ParticipantDump.State;
import io.cohort.common.CohortException;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How a dump of {@link CheckpointParticipant} ends: the coordinator's commit ({@link #commit}, or
 * {@link #committedLate} when no dump waits for it any more) or abort ({@link #abort}), or the
 * agent's own abort when the dump's {@link DecisionLease} runs out ({@link #expire}, the EXPIRED
 * transition). Each makes its transition under the dump's monitor, lets the held tasks go through
 * {@link TaskRelease}, settles the channel cut and the image, and closes the dump ({@link #done})
 * so that its vhost may be dumped again for a newer epoch.
 */
final class DumpEndings {
  private static final Logger log = LoggerFactory.getLogger(DumpEndings.class);

  private final String node;
  private final VhostRecords records;
  private final ImageStore images;
  private final ChannelCuts cuts;
  private final TaskRelease release;
  private final ActiveDumps dumps;

  /**
   * Told of each vhost a --stop ended (its link and, with the job's last, the job's network go).
   */
  private final Consumer<VhostRecord> stopped;

  /** The lease of every dump: its expiry is one of the endings. */
  final DecisionLease lease;

  DumpEndings(
      String node,
      VhostRecords records,
      ImageStore images,
      ChannelCuts cuts,
      TaskRelease release,
      ActiveDumps dumps,
      Consumer<VhostRecord> stopped) {
    this.node = node;
    this.records = records;
    this.images = images;
    this.cuts = cuts;
    this.release = release;
    this.dumps = dumps;
    this.stopped = stopped;
    this.lease = new DecisionLease(this::expire);
  }

  // ------------------------------------------------------------------ commit

  /** Commits a sealed dump: its held tasks go (resumed, or ended for --stop) and it is over. */
  FinishCheckpointResponse commit(ParticipantDump dump, boolean stop) {
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
        records.markStopped(dump.record);
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
        VhostRecords.endInit(dump.record);
        stopped.accept(records.load(dump.record.getVhostId()));
      }
    } finally {
      done(dump);
    }
    log.info("{}: committed ({})", dump, stop ? "stopped" : "resumed");
    return FinishCheckpointResponse.newBuilder().setFreezeMs(freeze).build();
  }

  /**
   * A commit that finds no dump waiting for it: the lease ran out after the seal (the image was
   * kept for this decision), or this agent started since. It stands if the image is published here;
   * a --stop commit also ends the vhost if the very init that was dumped still runs (the dump's
   * hook let it go when its agent died).
   */
  FinishCheckpointResponse committedLate(String ckpt, String vhost, boolean stop) {
    Optional<ImageManifest> published = images.publishedManifest(ckpt, vhost);
    if (published.isEmpty()) {
      throw CohortException.precondition(
          "no dump of %s/%s is waiting for a decision on %s, and no image of it is published "
              + "here",
          ckpt, vhost, node);
    }
    if (stop && records.exists(vhost)) {
      VhostRecord rec = records.observe(vhost);
      if (rec.getState() == VhostState.VHOST_STATE_RUNNING
          && rec.getPid() == published.get().getDumpedPid()) {
        records.markStopped(rec);
        VhostRecords.endInit(rec);
      }
    }
    log.info("agent {}: {}/{} committed after its dump had ended here", node, ckpt, vhost);
    return FinishCheckpointResponse.getDefaultInstance();
  }

  // ------------------------------------------------------------------ the lease

  /**
   * The lease of a dump ran out while it waited for the coordinator (EXPIRED): the agent aborts it
   * on its own authority, as an ABORT would, except that a sealed image is kept for the
   * coordinator's decision (its record may name it) and the vhost of a --stop dump is ended (a
   * failed --stop stops the job all the same). The coordinator hears of it with the heartbeats.
   */
  private void expire(ParticipantDump dump, long move) {
    Duration waited = dump.leaseTime();
    State from;
    synchronized (dump) {
      from = dump.expire(move);
      if (from == null) {
        return; // it moved on meanwhile
      }
      if (dump.stop) {
        records.markStopped(dump.record);
      }
      if (from.held()) {
        release.decide(dump, dump.stop); // --stop: "commit" has CRIU end the tasks it holds
      }
    }
    log.warn(
        "{}: no word from the coordinator within {} s ({}): aborted here, {}",
        dump,
        waited.toMillis() / 1000.0,
        from,
        dump.stop ? "the vhost is ended (--stop)" : "the job runs on");
    try {
      if (from.held()) {
        release.await(dump, dump.stop);
      }
      if (dump.stop) {
        VhostRecords.endInit(dump.record);
      } else if (dump.cut != null) {
        dump.cut.abort();
      }
    } finally {
      done(dump);
      if (!from.sealed()) {
        images.discard(dump.ckpt, dump.record.getVhostId());
      }
      lease.abandoned(
          dump.ckpt,
          dump.record.getVhostId(),
          "no word from the coordinator within " + waited.toMillis() / 1000.0 + " s",
          from.sealed());
    }
  }

  // ------------------------------------------------------------------ abort

  /** Aborts a dump (idempotent): lets held tasks go, discards the image. Returns the freeze. */
  long abort(ParticipantDump dump) {
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
      if (from.held()) {
        freeze = release.await(dump, false);
      }
    } finally {
      // Only now, CRIU's network lock gone, what the cut diverted is delivered (as at a resume):
      // delivered before, it was dropped by the lock, UDP datagrams lost and TCP senders left to
      // back off (part 9: output 2.9 s after the unfreeze). Delivered even if the wait failed.
      try {
        if (dump.cut != null) {
          dump.cut.abort();
          cuts.forget(dump.ckpt);
        }
      } finally {
        done(dump);
        images.discard(dump.ckpt, dump.record.getVhostId());
      }
    }
    log.info("{}: aborted, vhost carries on", dump);
    return freeze;
  }

  /** The dump is over: its session closes, its vhost may be dumped again for a newer epoch. */
  private void done(ParticipantDump dump) {
    dump.session.close();
    cuts.forget(dump.ckpt);
    dumps.ended(dump);
  }
}
