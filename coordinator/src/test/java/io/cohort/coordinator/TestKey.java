package io.cohort.coordinator;

import io.cohort.common.CheckpointKey;

/** The checkpoint key of the tests' cluster. */
final class TestKey {
  static final CheckpointKey KEY = CheckpointKey.random();

  private TestKey() {}
}
