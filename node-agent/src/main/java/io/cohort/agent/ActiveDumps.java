package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The fences of the agent's half of the barrier, per vhost: one dump at a time, and an epoch once
 * closed on a vhost (committed, aborted, expired, or aborted before its dump even arrived) is never
 * dumped there again, so a late request of an older epoch never touches a newer dump. Thread-safe.
 */
final class ActiveDumps {
  private final String node;

  /** The dump in progress of each vhost, by vhost id. Guarded by {@code this}. */
  private final Map<String, ParticipantDump> active = new HashMap<>();

  /** The newest epoch closed on each vhost. Guarded by {@code this}. */
  private final Map<String, Long> closedEpoch = new HashMap<>();

  ActiveDumps(String node) {
    this.node = node;
  }

  /** Checks the fences for a new dump of {@code vhost}, then starts it with {@code start}. */
  synchronized ParticipantDump open(String ckpt, String vhost, Supplier<ParticipantDump> start) {
    if (Ids.epochOfCheckpoint(ckpt) <= closedEpoch.getOrDefault(vhost, 0L)) {
      throw new CohortException(
          CohortException.Kind.ABORTED,
          "checkpoint "
              + ckpt
              + " was already ended on vhost "
              + vhost
              + " (aborted before its dump, or older than the newest checkpoint there)");
    }
    ParticipantDump running = active.get(vhost);
    if (running != null) {
      throw CohortException.precondition(
          "vhost %s is already being checkpointed (%s)", vhost, running.ckpt);
    }
    ParticipantDump dump = start.get();
    active.put(vhost, dump);
    return dump;
  }

  /** The dump of {@code ckpt} in progress on {@code vhost}; FAILED_PRECONDITION if none. */
  synchronized ParticipantDump require(String ckpt, String vhost) {
    ParticipantDump dump = active.get(vhost);
    if (dump == null || !dump.ckpt.equals(Ids.requireCheckpoint(ckpt))) {
      throw CohortException.precondition(
          "no dump of %s/%s is in progress on %s", ckpt, vhost, node);
    }
    return dump;
  }

  /**
   * The dump of {@code ckpt} on {@code vhost} if it is in progress, else null; with {@code abort},
   * an epoch with no dump here is closed (a dump that comes late must not run).
   */
  synchronized ParticipantDump find(String ckpt, String vhost, boolean abort) {
    ParticipantDump dump = active.get(vhost);
    if (dump != null && !dump.ckpt.equals(ckpt)) {
      dump = null; // a late answer about another epoch's dump
    }
    if (dump == null && abort) {
      close(vhost, Ids.epochOfCheckpoint(ckpt));
    }
    return dump;
  }

  /** The dump is over: its vhost may be dumped again, for a newer epoch only. */
  synchronized void ended(ParticipantDump dump) {
    active.remove(dump.record.getVhostId(), dump);
    close(dump.record.getVhostId(), dump.epoch);
  }

  private void close(String vhost, long epoch) {
    closedEpoch.merge(vhost, epoch, Math::max);
  }
}
