package io.cohort.coordinator;

import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;

/** The phases of a {@link CheckpointBarrier}, and its legal transitions in one table. */
enum BarrierPhase {
  PREPARING,
  DUMPING,
  RESUMING,
  SEALING,
  COMMITTING,
  PUBLISHING,
  STOPPING,
  DONE,
  ABORTING,
  ABORTED;

  private static final Map<BarrierPhase, Set<BarrierPhase>> LEGAL =
      new EnumMap<>(
          Map.of(
              PREPARING, EnumSet.of(DUMPING, ABORTING),
              DUMPING, EnumSet.of(RESUMING, SEALING, ABORTING),
              RESUMING, EnumSet.of(COMMITTING, ABORTING),
              SEALING, EnumSet.of(COMMITTING, ABORTING),
              COMMITTING, EnumSet.of(PUBLISHING, STOPPING, ABORTING),
              PUBLISHING, EnumSet.of(DONE),
              STOPPING, EnumSet.of(DONE),
              DONE, EnumSet.noneOf(BarrierPhase.class),
              ABORTING, EnumSet.of(ABORTED),
              ABORTED, EnumSet.noneOf(BarrierPhase.class)));

  /** Phases after which an abort is no longer possible: the checkpoint is committed. */
  private static final Set<BarrierPhase> COMMITTED = EnumSet.of(PUBLISHING, STOPPING, DONE);

  boolean mayGoTo(BarrierPhase next) {
    return LEGAL.get(this).contains(next);
  }

  boolean committed() {
    return COMMITTED.contains(this);
  }
}
