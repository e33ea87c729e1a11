package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.JobFile;
import io.cohort.proto.v1.VhostRecord;
import java.time.Duration;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One vhost's dump for one checkpoint, as the agent sees it: the per-dump state machine of the
 * agent's half of the barrier ({@link CheckpointParticipant} drives it).
 *
 * <pre>
 *   DUMPING -> HELD -+-> RESUMED ------> RESUMED_SEALING -> SEALED ------+-> COMMITTED
 *                    |                          ^              ^         |
 *                    +-> HELD_SEALING ----------+              |         |
 *                               |                              |         |
 *                               +-------> HELD_SEALED ---------+---------+
 *   any state but COMMITTED, EXPIRED -> ABORTED
 *   HELD, RESUMED, HELD_SEALED, SEALED (waiting for the coordinator) -> EXPIRED
 * </pre>
 *
 * <ul>
 *   <li>DUMPING: CRIU freezes the vhost and writes its image.
 *   <li>HELD: the image is written; CRIU's post-dump hook holds the tasks frozen.
 *   <li>RESUMED: checkpoint-and-continue, every vhost captured: the hook was told to let the tasks
 *       go. The image is not sealed yet.
 *   <li>*_SEALING / HELD_SEALED / SEALED: the image is being digested and synced, then is sealed
 *       and published (moved to its committed place), with the tasks still held (a --stop
 *       checkpoint, or a seal that overtook the resume) or running.
 *   <li>COMMITTED: the coordinator wrote the record; for --stop, the tasks were ended.
 *   <li>ABORTED: the epoch failed: the tasks run on (if still held, the hook is told to let them
 *       go) and the image is discarded wherever it got to.
 *   <li>EXPIRED: the agent waited for the coordinator's next word (in a {@link State#waiting}
 *       state) longer than its decision lease and aborted the dump on its own: the tasks run on
 *       (for --stop they are ended, as a failed --stop ends the job), an image not sealed yet is
 *       discarded, and a sealed one is kept for the coordinator's decision (a record may name it: a
 *       late commit keeps it, a late abort or the sweep removes it).
 * </ul>
 *
 * The resume and the seal of a vhost run at once on two threads, so "held or running" and "how far
 * the image is" are combined in one state. Transitions happen under this object's monitor and are
 * checked against {@link #LEGAL}; the slow work between them (CRIU, digests, fsync) runs outside
 * it, so an abort is never kept waiting by a seal.
 */
final class ParticipantDump {
  private static final Logger log = LoggerFactory.getLogger(ParticipantDump.class);

  enum State {
    DUMPING,
    HELD,
    HELD_SEALING,
    HELD_SEALED,
    RESUMED,
    RESUMED_SEALING,
    SEALED,
    COMMITTED,
    ABORTED,
    EXPIRED;

    /** CRIU's hook still holds the tasks frozen (or will, once the dump reaches it). */
    boolean held() {
      return this == DUMPING || this == HELD || this == HELD_SEALING || this == HELD_SEALED;
    }

    boolean sealed() {
      return this == HELD_SEALED || this == SEALED;
    }

    boolean terminal() {
      return this == COMMITTED || this == ABORTED || this == EXPIRED;
    }

    /**
     * The agent has answered and waits for the coordinator's next request or decision: the states
     * its decision lease runs in (not while CRIU dumps or the agent seals).
     */
    boolean waiting() {
      return this == HELD || this == RESUMED || this == HELD_SEALED || this == SEALED;
    }
  }

  static final Map<State, Set<State>> LEGAL =
      new EnumMap<>(
          Map.of(
              State.DUMPING, EnumSet.of(State.HELD, State.ABORTED),
              State.HELD,
                  EnumSet.of(State.RESUMED, State.HELD_SEALING, State.ABORTED, State.EXPIRED),
              State.HELD_SEALING,
                  EnumSet.of(State.RESUMED_SEALING, State.HELD_SEALED, State.ABORTED),
              State.HELD_SEALED,
                  EnumSet.of(State.SEALED, State.COMMITTED, State.ABORTED, State.EXPIRED),
              State.RESUMED, EnumSet.of(State.RESUMED_SEALING, State.ABORTED, State.EXPIRED),
              State.RESUMED_SEALING, EnumSet.of(State.SEALED, State.ABORTED),
              State.SEALED, EnumSet.of(State.COMMITTED, State.ABORTED, State.EXPIRED),
              State.COMMITTED, EnumSet.noneOf(State.class),
              State.ABORTED, EnumSet.noneOf(State.class),
              State.EXPIRED, EnumSet.noneOf(State.class)));

  final String ckpt;
  final long epoch;
  final VhostRecord record;
  final DumpVhostRequest request;
  final boolean stop;
  final DumpSession session;

  /** The job's overlay cut on this node; null when the job does not span nodes. */
  final ChannelCuts.Cut cut;

  private final String name;
  private final DecisionLease lease;
  private State state = State.DUMPING;

  /** Transitions made so far: an expiry armed in an earlier state finds it moved on. */
  private long moves;

  /** The decision lease of the current wait (renewed by each request of the coordinator). */
  private Duration leaseTime;

  private long logSize = -1;
  private List<JobFile> jobFiles = List.of();

  ParticipantDump(
      String ckpt,
      VhostRecord record,
      DumpVhostRequest request,
      DumpSession session,
      ChannelCuts.Cut cut,
      DecisionLease lease,
      Duration leaseTime,
      String who) {
    this.ckpt = ckpt;
    this.epoch = request.getEpoch();
    this.record = record;
    this.request = request;
    this.stop = request.getStop();
    this.session = session;
    this.cut = cut;
    this.lease = lease;
    this.leaseTime = leaseTime;
    this.name = who + ": " + ckpt + "/" + record.getVhostId();
  }

  /** The coordinator asked again: the next wait gets the lease that request implies. */
  synchronized void renewLease(Duration time) {
    leaseTime = time;
  }

  synchronized Duration leaseTime() {
    return leaseTime;
  }

  /**
   * The lease armed after transition {@code move} ran out: moves to EXPIRED if the dump is still
   * waiting where it was then, and returns the state left; null if it moved on meanwhile.
   */
  synchronized State expire(long move) {
    if (move != moves || !state.waiting()) {
      return null;
    }
    State from = state;
    to(State.EXPIRED);
    return from;
  }

  synchronized State state() {
    return state;
  }

  synchronized long logSize() {
    return logSize;
  }

  /** The job's other files (stderr, order, stdin) with their sizes at the dump. */
  synchronized List<JobFile> jobFiles() {
    return jobFiles;
  }

  /** The image is written and the tasks are held: DUMPING -> HELD. */
  synchronized void dumped(long outputLogSize, List<JobFile> files) {
    to(State.HELD);
    logSize = outputLogSize;
    jobFiles = List.copyOf(files);
  }

  /**
   * Moves to {@code next} if the current state is one of {@code from}; otherwise throws: ABORTED if
   * the dump was aborted meanwhile, FAILED_PRECONDITION for any other state. Returns the state
   * left.
   */
  synchronized State advance(String what, Map<State, State> next) {
    State to = next.get(state);
    if (to == null) {
      throw refused(what);
    }
    State from = state;
    to(to);
    return from;
  }

  /** Moves to ABORTED unless already final; returns the state left (or null if final). */
  synchronized State abort() {
    if (state.terminal()) {
      return null;
    }
    State from = state;
    to(State.ABORTED);
    return from;
  }

  /** The error for a request that the current state does not allow. */
  synchronized CohortException refused(String what) {
    if (state == State.ABORTED) {
      return new CohortException(
          CohortException.Kind.ABORTED,
          "checkpoint " + ckpt + " of vhost " + record.getVhostId() + " was aborted");
    }
    return CohortException.precondition(
        "cannot %s %s of vhost %s: its dump is %s", what, ckpt, record.getVhostId(), state);
  }

  private void to(State next) {
    if (!LEGAL.get(state).contains(next)) {
      throw new IllegalStateException(name + ": illegal transition " + state + " -> " + next);
    }
    log.debug("{}: {} -> {}", name, state, next);
    state = next;
    moves++;
    if (next.waiting()) {
      lease.arm(this, moves, leaseTime);
    }
  }

  @Override
  public String toString() {
    return name;
  }
}
