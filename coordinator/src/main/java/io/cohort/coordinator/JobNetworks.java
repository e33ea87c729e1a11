package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.JobNetworkPlan;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one owner of the network plan of jobs that span vhosts: which block of the address pool a job
 * has, its routing table on the nodes and the VXLAN id of its current incarnation. Agents are given
 * the plan; nothing derives it from a job id.
 *
 * <p>A job holds its block while it runs, and while a run or a restart of it is in progress (its
 * lock is held): those blocks are <em>taken</em>. The plan stays in the catalog when the job ends,
 * as a claim: a restart needs the very same addresses (they are in its images), so a new job gets a
 * block that no ended job claims as long as the pool has one, and only then one that an ended job
 * had. A restart whose block was given away that way is refused, naming the job that holds it.
 * Every incarnation gets a new VXLAN id, unique among the running jobs, so packets of an earlier
 * incarnation left running on a node that was cut off reach nothing of the new one.
 *
 * <p>Every decision is made under the catalog's lock of the plans (the embedded mode runs several
 * coordinators, one per CLI process, over one catalog).
 */
final class JobNetworks {
  private static final Logger log = LoggerFactory.getLogger(JobNetworks.class);

  /** The default pool: RFC 2544's benchmarking range, apart from the emulated fabric's /24s. */
  static final String DEFAULT_POOL = "198.19.0.0/16";

  private static final int MAX_VNI = 0xFFFFFF;

  private final Catalog catalog;
  private final AddressPool pool;
  private final SecureRandom random = new SecureRandom();

  JobNetworks(Catalog catalog, AddressPool pool) {
    this.catalog = catalog;
    this.pool = pool;
  }

  /** The pool blocks are cut from. */
  AddressPool pool() {
    return pool;
  }

  /** The address of vhost {@code index} of a job planned {@code plan}. */
  static String address(JobNetworkPlan plan, int index) {
    return AddressPool.Block.parse(plan.getSubnet()).address(index);
  }

  /**
   * Plans the network of a new job of {@code vhosts} vhosts: a free block and a new VXLAN id. The
   * caller holds the job's lock until the job's record is saved. Refuses when the pool is full.
   */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  JobNetworkPlan lease(String jobId, int vhosts) {
    long size = AddressPool.blockSize(vhosts + 1); // and the markers' address
    if (size > pool.size()) {
      throw CohortException.invalid(
          "a job of %d vhosts needs %d addresses, more than the coordinator's whole address pool "
              + "%s has; give the coordinator a larger pool (--vhost-pool)",
          vhosts, size, pool);
    }
    try (Catalog.Hold h = catalog.lockNetworks()) {
      Usage u = usage(jobId);
      OptionalInt start = pool.firstFree(size, u.taken, u.claimed);
      if (start.isEmpty()) {
        throw CohortException.precondition(
            "the vhost address pool %s has no free block of %d addresses for a job of %d vhosts: "
                + "%d running jobs hold it; wait for one to end, end one (`cohort kill JOB`), or "
                + "give the coordinator a larger pool (--vhost-pool)",
            pool, size, vhosts, u.taken.size());
      }
      AddressPool.Block block = new AddressPool.Block(start.getAsInt(), size);
      u.claimed.stream()
          .filter(b -> b.overlaps(block))
          .findFirst()
          .ifPresent(
              b ->
                  log.warn(
                      "job-{}: the address pool is short: block {} overlaps {} of an ended job, "
                          + "which can no longer restart while job {} runs",
                      jobId,
                      block,
                      b,
                      jobId));
      JobNetworkPlan plan =
          JobNetworkPlan.newBuilder()
              .setSubnet(block.toString())
              .setTable(pool.table(block))
              .setVni(newVni(u.vnis))
              .setMarkerAddress(block.markerAddress())
              .build();
      catalog.saveNetwork(jobId, plan);
      return plan;
    }
  }

  /**
   * Plans the network of a restart: the job's block (the one it was planned, or for a job planned
   * before there were plans, the smallest block holding {@code addresses}, its vhosts' addresses),
   * with a new VXLAN id. The caller holds the job's lock. Refuses when another job holds the block.
   */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  JobNetworkPlan renew(String jobId, List<String> addresses) {
    try (Catalog.Hold h = catalog.lockNetworks()) {
      Optional<JobNetworkPlan> known = Optional.ofNullable(catalog.networks().get(jobId));
      AddressPool.Block block =
          known
              .map(p -> AddressPool.Block.parse(p.getSubnet()))
              .orElseGet(() -> AddressPool.Block.enclosing(addresses));
      Usage u = usage(jobId);
      for (Map.Entry<String, AddressPool.Block> t : u.takenBy.entrySet()) {
        if (t.getValue().overlaps(block)) {
          throw CohortException.precondition(
              "job %s cannot restart now: its vhosts' addresses (%s) are in use by job %s, which "
                  + "runs (the address pool was full when it started); restart it once job %s "
                  + "has ended, or end that job (`cohort kill %s`)",
              jobId, block, t.getKey(), t.getKey(), t.getKey());
        }
      }
      int table =
          known
              .map(JobNetworkPlan::getTable)
              .orElseGet(() -> pool.contains(block) ? pool.table(block) : outsideTable(block));
      JobNetworkPlan plan =
          JobNetworkPlan.newBuilder()
              .setSubnet(block.toString())
              .setTable(table)
              .setVni(newVni(u.vnis))
              .setMarkerAddress(markerAddress(block, addresses))
              .build();
      catalog.saveNetwork(jobId, plan);
      return plan;
    }
  }

  /**
   * A table for a block outside the pool (a job planned before the pool was changed): below the
   * pool's tables, one per /24 as the jobs of that time had.
   */
  private static int outsideTable(AddressPool.Block block) {
    return AddressPool.FIRST_TABLE - 1 - ((block.start() >>> 8) & 0xffff) % 50_000;
  }

  /**
   * The block's markers' address: its last usable one, unless a vhost has it (a job planned before
   * markers had an address of their own: then the first one no vhost has).
   */
  private static String markerAddress(AddressPool.Block block, List<String> vhosts) {
    for (long i = block.usable() - 1; i >= 0; i--) {
      String a = block.address((int) i);
      if (!vhosts.contains(a)) {
        return a;
      }
    }
    throw CohortException.precondition(
        "the block %s of the job has no address left for the agents' markers", block);
  }

  private int newVni(Set<Integer> used) {
    while (true) {
      int vni = 1 + random.nextInt(MAX_VNI);
      if (!used.contains(vni)) {
        return vni;
      }
    }
  }

  /** Blocks taken (by job), blocks claimed by ended jobs, VXLAN ids in use; {@code self} aside. */
  private record Usage(
      Map<String, AddressPool.Block> takenBy,
      List<AddressPool.Block> taken,
      List<AddressPool.Block> claimed,
      Set<Integer> vnis) {}

  private Usage usage(String self) {
    Map<String, AddressPool.Block> takenBy = new java.util.TreeMap<>();
    List<AddressPool.Block> claimed = new ArrayList<>();
    Set<Integer> vnis = new HashSet<>();
    for (Map.Entry<String, JobNetworkPlan> e : catalog.networks().entrySet()) {
      String job = e.getKey();
      if (job.equals(self)) {
        continue;
      }
      AddressPool.Block b = AddressPool.Block.parse(e.getValue().getSubnet());
      switch (holding(job)) {
        case TAKEN -> {
          takenBy.put(job, b);
          vnis.add(e.getValue().getVni());
        }
        case CLAIMED -> claimed.add(b);
        case ABANDONED -> catalog.deleteNetwork(job);
      }
    }
    return new Usage(takenBy, List.copyOf(takenBy.values()), claimed, vnis);
  }

  private enum Holding {
    TAKEN,
    CLAIMED,
    ABANDONED
  }

  /**
   * Whether a job holds its block now: it runs, or a run or restart of it holds its lock. Looked at
   * under the job's lock, so a restart cannot finish between the two looks.
   */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  private Holding holding(String job) {
    Optional<Catalog.Hold> held = catalog.tryLockJob(job);
    if (held.isEmpty()) {
      return Holding.TAKEN;
    }
    try (Catalog.Hold h = held.get()) {
      Optional<JobRecord> rec = catalog.findJob(job);
      if (rec.isEmpty()) {
        return Holding.ABANDONED; // a run that died before it saved the job
      }
      return rec.get().getInfo().getState() == JobState.JOB_STATE_RUNNING
          ? Holding.TAKEN
          : Holding.CLAIMED;
    }
  }
}
