package io.cohort.coordinator;

import com.google.protobuf.ByteString;
import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.common.JobInput;
import io.cohort.proto.v1.CreateVhostRequest;
import io.cohort.proto.v1.ImagePolicy;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobNetworkPlan;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobSpec;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.Owner;
import io.cohort.proto.v1.VhostPlacement;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs a new job: checks the request, places its vhosts ({@link Placement} has the rule), creates
 * them (workers first, the head last), wires their network and records the job.
 */
final class JobLauncher {
  private static final Logger log = LoggerFactory.getLogger(JobLauncher.class);

  /** The most vhosts a job may have (the address pool may allow fewer). */
  static final int MAX_VHOSTS = 4096;

  private final Catalog catalog;
  private final AgentDirectory agents;
  private final JobVhosts vhosts;
  private final JobNetworks networks;
  private final Clock clock;
  private final SecureRandom random = new SecureRandom();

  private final ImagePolicy defaultImagePolicy;

  JobLauncher(
      Catalog catalog,
      AgentDirectory agents,
      JobVhosts vhosts,
      JobNetworks networks,
      Clock clock,
      ImagePolicy defaultImagePolicy) {
    this.networks = networks;
    this.defaultImagePolicy = defaultImagePolicy;
    this.catalog = catalog;
    this.agents = agents;
    this.vhosts = vhosts;
    this.clock = clock;
  }

  /** A job of root's (what every job was before owners existed). */
  JobInfo run(JobSpec spec, List<String> nodes, int vhostCount, int slots, ByteString stdin) {
    return run(spec, Owner.getDefaultInstance(), nodes, vhostCount, slots, stdin);
  }

  /**
   * Runs a job whose processes run as {@code owner} (the caller's identity, from its transport);
   * recorded in the job's {@code JobInfo.owner}, passed to every agent that creates or restores one
   * of its vhosts.
   */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  JobInfo run(
      JobSpec spec, Owner owner, List<String> nodes, int vhostCount, int slots, ByteString stdin) {
    JobInput.check(stdin.size());
    if (spec.getCommandCount() == 0 || spec.getCommand(0).isBlank()) {
      throw CohortException.invalid("no command given: use `cohort run -- CMD ARGS...`");
    }
    if (!spec.getCwd().startsWith("/")) {
      throw CohortException.invalid(
          "working directory must be an absolute path, got '%s'", spec.getCwd());
    }
    if (vhostCount < 0 || vhostCount > MAX_VHOSTS || slots < 0) {
      throw CohortException.invalid("--vhosts must be 1..%d and --slots positive", MAX_VHOSTS);
    }
    Placement where = place(nodes, vhostCount);
    String jobId = catalog.allocateJobId();
    // Nobody else knows the id yet; the lock tells JobNetworks that the job's block is taken
    // until its record (saved last) says it runs.
    try (Catalog.Hold hold = catalog.lockJob(jobId)) {
      return launch(jobId, spec, owner, where, slots, stdin);
    }
  }

  private JobInfo launch(
      String jobId, JobSpec spec, Owner owner, Placement where, int slots, ByteString stdin) {
    List<String> placement = where.nodes();
    String token = HexFormat.of().formatHex(random.generateSeed(16));
    String networkKey = JobVhosts.newNetworkKey();
    if (spec.getImagePolicy() == ImagePolicy.IMAGE_POLICY_UNSPECIFIED) {
      spec = spec.toBuilder().setImagePolicy(defaultImagePolicy).build();
    }
    boolean networked = placement.size() > 1;
    JobNetworkPlan plan =
        networked ? networks.lease(jobId, placement.size()) : JobNetworkPlan.getDefaultInstance();
    List<String> peers = new ArrayList<>();
    for (int i = 0; networked && i < placement.size(); i++) {
      peers.add(JobNetworks.address(plan, i));
    }
    // Workers first (their spawn services must be up when the head's mpirun starts), head last.
    List<VhostPlacement> created = new ArrayList<>();
    try {
      for (int i = placement.size() - 1; i >= 0; i--) {
        CreateVhostRequest.Builder req =
            CreateVhostRequest.newBuilder()
                .setJobId(jobId)
                .setVhostId(Ids.vhost(jobId, i))
                .setHostname("job" + jobId + "-" + i)
                .setToken(token)
                .setOwner(owner);
        if (networked) {
          req.setAddress(peers.get(i)).setPlan(plan);
        }
        if (i == 0) {
          req.setSpec(spec).setStdin(stdin); // mpirun reads it in the head vhost
          if (networked) {
            req.addAllPeers(peers).setSlots(slots > 0 ? slots : 1);
          }
        } else {
          // A worker vhost idles until the head's mpirun starts daemons in it.
          req.setSpec(spec.toBuilder().clearCommand().addCommand("sleep").addCommand("infinity"));
        }
        created.add(0, agents.agent(placement.get(i)).createVhost(req.build()).getPlacement());
      }
      vhosts.configureNetwork(jobId, created, networkKey, plan);
    } catch (RuntimeException e) {
      vhosts.killQuietly(created);
      throw e;
    }
    String logPath = agents.agent(placement.get(0)).getVhost(Ids.vhost(jobId, 0)).getLogPath();
    JobInfo info =
        JobInfo.newBuilder()
            .setJobId(jobId)
            .setSpec(spec)
            .setState(JobState.JOB_STATE_RUNNING)
            .setCreatedUnixMs(clock.millis())
            .setIncarnation(1)
            .addAllVhosts(created)
            .setLogPath(logPath)
            .setOwner(owner)
            .build();
    catalog.saveJob(
        JobRecord.newBuilder()
            .setInfo(info)
            .setToken(token)
            .setNextEpoch(1)
            .setNetworkKey(networkKey)
            .build());
    log.info(
        "job-{}: started, {} vhost(s) on {}{} ({})",
        jobId,
        placement.size(),
        String.join(",", placement),
        where.unused().isEmpty() ? "" : " (" + String.join(",", where.unused()) + " unused)",
        String.join(" ", spec.getCommandList()));
    return info;
  }

  /**
   * The node of each vhost of a new job: spread over the nodes asked for, or all on the live node
   * with the fewest running vhosts ({@link Placement} has the rule).
   */
  private Placement place(List<String> requested, int vhostCount) {
    Map<String, Integer> running = vhosts.runningByNode();
    if (requested.isEmpty()) {
      return Placement.onLeastBusy(
          agents.nodes().stream().filter(agents::isUsable).toList(), vhostCount, running);
    }
    Placement p = Placement.onNodes(requested, vhostCount, running, agents::agent);
    vhosts.requireOverlay(p.nodes());
    return p;
  }
}
