package io.cohort.coordinator;

import java.time.Duration;

/**
 * Timeouts of the checkpoint barrier's phases; defaults in {@link #defaults()}, mirrored in
 * docs/configuration.md.
 *
 * @param prepare health and disk checks on every agent
 * @param dump freezing and dumping every vhost, images synced
 * @param finish resuming (or stopping) every vhost after the decision
 */
public record BarrierConfig(Duration prepare, Duration dump, Duration finish) {
  public static BarrierConfig defaults() {
    return new BarrierConfig(Duration.ofSeconds(30), Duration.ofMinutes(10), Duration.ofMinutes(2));
  }
}
