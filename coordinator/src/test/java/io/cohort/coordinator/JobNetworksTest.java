package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobNetworkPlan;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The one owner of the job network plans, over a real catalog. */
class JobNetworksTest {
  @TempDir Path home;

  private Catalog catalog;

  private JobNetworks networks(String pool) {
    catalog = new Catalog(home, TestKey.KEY);
    return new JobNetworks(catalog, AddressPool.parse(pool));
  }

  private void record(String job, JobState state) {
    catalog.saveJob(
        JobRecord.newBuilder().setInfo(JobInfo.newBuilder().setJobId(job).setState(state)).build());
  }

  /** Leases as JobLauncher does: then the job's record says it runs. */
  private JobNetworkPlan run(JobNetworks n, String job, int vhosts) {
    JobNetworkPlan plan = n.lease(job, vhosts);
    record(job, JobState.JOB_STATE_RUNNING);
    return plan;
  }

  @Test
  void jobsWhoseIdsDifferBy256GetBlocksApart() {
    JobNetworks n = networks(JobNetworks.DEFAULT_POOL);
    JobNetworkPlan a = run(n, "1", 4);
    JobNetworkPlan b = run(n, "257", 4);
    AddressPool.Block ba = AddressPool.Block.parse(a.getSubnet());
    AddressPool.Block bb = AddressPool.Block.parse(b.getSubnet());
    assertFalse(ba.overlaps(bb), a + " / " + b);
    assertNotEquals(a.getTable(), b.getTable());
    assertNotEquals(a.getVni(), b.getVni());
    assertNotEquals(JobNetworks.address(a, 0), JobNetworks.address(b, 0));
  }

  @Test
  void aJobOfThousandsOfVhostsGetsAnAddressEach() {
    JobNetworks n = networks(JobNetworks.DEFAULT_POOL);
    run(n, "1", 2);
    for (int vhosts : List.of(246, 300, 4096)) {
      String job = Integer.toString(vhosts);
      JobNetworkPlan plan = run(n, job, vhosts);
      AddressPool.Block block = AddressPool.Block.parse(plan.getSubnet());
      assertTrue(n.pool().contains(block));
      Set<String> seen = new HashSet<>();
      for (int i = 0; i < vhosts; i++) {
        String a = JobNetworks.address(plan, i);
        assertTrue(block.overlaps(new AddressPool.Block(AddressPool.ipv4(a), 1)), a);
        assertFalse(a.endsWith(".0") || a.endsWith(".255"), a);
        assertTrue(seen.add(a), "twice: " + a);
      }
      assertFalse(seen.contains(plan.getMarkerAddress()), "the markers' address is no vhost's");
      assertTrue(
          block.overlaps(new AddressPool.Block(AddressPool.ipv4(plan.getMarkerAddress()), 1)));
    }
  }

  @Test
  void theDefaultPoolHoldsAThousandJobsAndOneOf4096VhostsAtOnce() {
    JobNetworks n = networks(JobNetworks.DEFAULT_POOL);
    run(n, "5000", 4096);
    Set<Integer> tables = new HashSet<>();
    for (int j = 1; j <= 1000; j++) {
      tables.add(run(n, Integer.toString(j), 2 + j % 14).getTable());
    }
    assertEquals(1000, tables.size(), "a table each");
  }

  @Test
  void aRestartKeepsTheBlockWithANewVni() {
    JobNetworks n = networks(JobNetworks.DEFAULT_POOL);
    JobNetworkPlan first = run(n, "3", 3);
    record("3", JobState.JOB_STATE_STOPPED);
    run(n, "4", 3); // a job started meanwhile takes another block
    JobNetworkPlan again = n.renew("3", List.of());
    assertEquals(first.getSubnet(), again.getSubnet());
    assertEquals(first.getTable(), again.getTable());
    assertNotEquals(first.getVni(), again.getVni(), "each incarnation its own VNI");
  }

  @Test
  void aFullPoolRefusesANewJobAndAnEndedJobsBlockIsGivenOnlyThen() {
    JobNetworks n = networks("198.19.0.0/27"); // two blocks of 16
    JobNetworkPlan a = run(n, "1", 2);
    run(n, "2", 2);
    CohortException full = assertThrows(CohortException.class, () -> n.lease("3", 2));
    assertEquals(CohortException.Kind.FAILED_PRECONDITION, full.kind());
    assertTrue(full.getMessage().contains("no free block"), full.getMessage());
    assertTrue(full.getMessage().contains("--vhost-pool"), full.getMessage());

    record("1", JobState.JOB_STATE_EXITED); // job 1 ends: its block is free again
    assertEquals(a.getSubnet(), run(n, "3", 2).getSubnet());
    CohortException taken = assertThrows(CohortException.class, () -> n.renew("1", List.of()));
    assertTrue(taken.getMessage().contains("in use by job 3"), taken.getMessage());
  }

  @Test
  void aJobTooLargeForThePoolIsRefused() {
    JobNetworks n = networks("198.19.0.0/24");
    CohortException e = assertThrows(CohortException.class, () -> n.lease("1", 300));
    assertEquals(CohortException.Kind.INVALID_ARGUMENT, e.kind());
  }

  @Test
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  void aRunInProgressHoldsItsBlockAndADeadOneLetsItGo() {
    JobNetworks n = networks("198.19.0.0/28"); // one block
    try (Catalog.Hold h = catalog.lockJob("1")) {
      n.lease("1", 2); // no record yet: being launched
      // Another thread (another run) finds the block taken by this one, which holds the lock.
      java.util.concurrent.atomic.AtomicReference<Throwable> seen =
          new java.util.concurrent.atomic.AtomicReference<>();
      Thread t =
          new Thread(
              () -> {
                try {
                  n.lease("2", 2);
                } catch (Throwable e) {
                  seen.set(e);
                }
              });
      t.start();
      try {
        t.join();
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
      assertTrue(seen.get() instanceof CohortException, "taken by the run: " + seen.get());
    }
    // The run died without a record and without its lock: its block is free.
    assertEquals("198.19.0.0/28", n.lease("2", 2).getSubnet());
  }

  @Test
  void aJobPlannedBeforeThePlansKeepsItsAddresses() {
    JobNetworks n = networks(JobNetworks.DEFAULT_POOL);
    JobNetworkPlan p = n.renew("7", List.of("198.19.7.10", "198.19.7.11"));
    assertEquals("198.19.7.0/28", p.getSubnet());
    assertEquals("198.19.7.11", JobNetworks.address(p, 10));
  }

  @Test
  void badPoolsAreRefused() {
    for (String bad : List.of("198.19.0.1/16", "198.19.0.0", "10.0.0.0/4", "x/16", "1.2.3/8")) {
      assertThrows(CohortException.class, () -> AddressPool.parse(bad), bad);
    }
  }
}
