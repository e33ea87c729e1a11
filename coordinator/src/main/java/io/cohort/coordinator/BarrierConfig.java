package io.cohort.coordinator;

import java.time.Duration;

/**
 * Timeouts of the checkpoint barrier's phases; defaults in {@link #defaults()}, mirrored in
 * docs/configuration.md.
 *
 * @param prepare health and disk checks on every agent
 * @param dump freezing and dumping every vhost, images synced
 * @param finish resuming (or stopping) every vhost after the decision
 * @param silence how long an agent of the job may go unheard (no heartbeat) before the epoch is
 *     aborted, in any phase before the commit: a node down or cut off should not keep the job's
 *     other vhosts frozen until a phase's timeout. Twice the registry's liveness, so one late
 *     heartbeat of a busy node does not abort a checkpoint.
 */
public record BarrierConfig(Duration prepare, Duration dump, Duration finish, Duration silence) {
  public static BarrierConfig defaults() {
    return new BarrierConfig(
        Duration.ofSeconds(30),
        Duration.ofMinutes(10),
        Duration.ofMinutes(2),
        Duration.ofSeconds(6));
  }
}
