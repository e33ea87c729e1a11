package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;

/**
 * Jobs a test restarted from their previous checkpoint and left to run on beside its next cases; a
 * last test checks that each ended as an uninterrupted run would.
 */
final class RestartedJobs {
  /** A case's job, restarted from {@code previous}, and the output it must end with. */
  private record Restarted(String cell, String job, String previous, String expected) {}

  private final List<Restarted> jobs = new ArrayList<>();

  void add(String cell, String job, String previous, String expected) {
    jobs.add(new Restarted(cell, job, previous, expected));
  }

  /** Waits for every job to end; each must exit 0 with the output of an uninterrupted run. */
  void assertEachEndedAsUninterrupted(CohortHarness cohort, long count) {
    assertEquals(count, jobs.size(), "every case restarted its job");
    for (Restarted r : jobs) {
      assertEquals(0, cohort.await(r.job()), r.cell());
      ReferenceRuns.assertSameOutput(
          r.expected(), cohort.log(r.job()), r.cell() + ": restarted from " + r.previous());
    }
  }
}
