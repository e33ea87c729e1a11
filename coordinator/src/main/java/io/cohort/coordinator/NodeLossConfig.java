package io.cohort.coordinator;

import io.cohort.proto.v1.ImagePolicy;
import java.time.Duration;

/**
 * How the coordinator guards against losing a node; defaults in {@link #defaults()}, mirrored in
 * docs/configuration.md.
 *
 * @param imagePolicy where a job's images are kept when it does not say (partner: also on another
 *     node)
 * @param copyBytesPerSecond the most a partner copy reads per second (0: no limit), so that the
 *     copies running after a commit leave the fabric to the jobs
 * @param deadAfter a node down this long is declared dead on its own (null: only by hand)
 */
public record NodeLossConfig(ImagePolicy imagePolicy, long copyBytesPerSecond, Duration deadAfter) {
  public static NodeLossConfig defaults() {
    return new NodeLossConfig(ImagePolicy.IMAGE_POLICY_PARTNER, 0, null);
  }
}
