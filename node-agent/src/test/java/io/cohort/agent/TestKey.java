package io.cohort.agent;

import io.cohort.common.CheckpointKey;

/** The checkpoint key of the tests' cluster: one for every store of a test run, as in a cluster. */
final class TestKey {
  static final CheckpointKey KEY = CheckpointKey.random();

  private TestKey() {}
}
