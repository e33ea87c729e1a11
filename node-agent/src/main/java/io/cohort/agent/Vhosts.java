package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.Ids;
import io.cohort.common.JobSignals;
import io.cohort.proto.v1.CreateVhostRequest;
import io.cohort.proto.v1.CreateVhostResponse;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.JobFile;
import io.cohort.proto.v1.Owner;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The life of a vhost on this node outside checkpoints: created with the job's command in it,
 * observed, ended. Queries ({@link #get}) only observe; {@link #kill} is the one step that ends a
 * vhost and cleans up after it (its record, its node-side link), and is idempotent.
 */
final class Vhosts {
  private static final Logger log = LoggerFactory.getLogger(Vhosts.class);

  /** Port of the spawn service of every networked vhost's init (cohort-rsh connects to it). */
  static final int SPAWN_PORT = 7207;

  private final AgentConfig config;
  private final String who;
  private final VhostRecords records;
  private final VhostLauncher launcher;
  private final VhostNetwork network;
  private final Path initPath;
  private final Path rshPath;

  /** Told when the last vhost of a job on this node is gone (with its record). */
  private final Consumer<VhostRecord> jobGone;

  /** The agents forward the job's packets between nodes (the user-space path). */
  private final boolean agentsForward;

  Vhosts(
      AgentConfig config,
      VhostRecords records,
      VhostLauncher launcher,
      VhostNetwork network,
      Path initPath,
      Path rshPath,
      boolean agentsForward,
      Consumer<VhostRecord> jobGone) {
    this.agentsForward = agentsForward;
    this.config = config;
    this.who = "agent " + config.node();
    this.records = records;
    this.launcher = launcher;
    this.network = network;
    this.initPath = initPath;
    this.rshPath = rshPath;
    this.jobGone = jobGone;
  }

  CreateVhostResponse create(CreateVhostRequest req) {
    String id = Ids.requireVhost(req.getVhostId());
    if (req.getSpec().getCommandCount() == 0) {
      throw CohortException.invalid("no command given");
    }
    if (records.exists(id)) {
      throw CohortException.precondition("vhost %s already exists on %s", id, config.node());
    }
    boolean networked = !req.getAddress().isEmpty();
    if (networked && !config.vhostNetworking()) {
      throw CohortException.precondition(
          "a job with several vhosts needs vhost networking, "
              + "which is off on this agent (the embedded mode never changes this machine's "
              + "network): run it on a cluster (`cohort cluster up`, then `cohort run --vhosts N`)");
    }
    Owner owner = req.getOwner();
    Path dir = records.vhostDir(id);
    Path logFile = dir.resolve("output.log");
    Path status = dir.resolve("status");
    List<JobFile> jobFiles;
    try {
      JobOwner.prepareDir(dir);
      Files.deleteIfExists(status);
      Files.write(logFile, new byte[0]);
      jobFiles = JobFiles.create(dir, req.getStdin());
      JobOwner.giveFiles(owner, JobFiles.paths(logFile, jobFiles));
    } catch (IOException e) {
      DurableFiles.deleteTree(dir);
      throw DurableFiles.failure("cannot create " + dir, e);
    } catch (RuntimeException e) {
      DurableFiles.deleteTree(dir);
      throw e;
    }
    List<String> command = req.getSpec().getCommandList();
    Map<String, String> env = jobEnvironment(req.getSpec().getEnvList(), owner);
    List<String> initOptions = new ArrayList<>(JobFiles.initOptions(jobFiles));
    initOptions.addAll(JobOwner.initOptions(owner));
    long pid;
    try {
      if (networked) {
        command = networkedCommand(req, dir, command, env, initOptions);
      }
      pid =
          launcher.launch(
              req.getHostname(),
              logFile,
              status,
              req.getSpec().getCwd(),
              initOptions,
              command,
              env);
      if (networked) {
        try {
          // The command starts when the coordinator has told every node of the job where its
          // vhosts are (ConfigureJobNetwork writes the ready file).
          network.attach(
              pid, id, req.getAddress(), VhostNetwork.requirePlan(req.getAddress(), req.getPlan()));
        } catch (RuntimeException e) {
          ProcessIdentity.of(pid).ifPresent(ProcessIdentity::kill);
          throw e;
        }
      }
    } catch (IOException e) {
      DurableFiles.deleteTree(dir);
      throw DurableFiles.failure("cannot create vhost " + id, e);
    } catch (RuntimeException e) {
      DurableFiles.deleteTree(dir);
      throw e;
    }
    ProcessIdentity init = ProcessIdentity.of(pid).orElseGet(() -> new ProcessIdentity(pid, -1));
    VhostRecord rec =
        VhostRecord.newBuilder()
            .setVhostId(id)
            .setJobId(req.getJobId())
            .setHostname(req.getHostname())
            .setSpec(req.getSpec())
            .setPid(pid)
            .setPidStartTicks(init.startTicks())
            .setLogPath(logFile.toString())
            .setStatusPath(status.toString())
            .setState(VhostState.VHOST_STATE_RUNNING)
            .setToken(req.getToken())
            .setInitPath(initPath.toString())
            .setAddress(req.getAddress())
            .setPlan(req.getPlan())
            .setHostVeth(networked ? VhostNetwork.hostVeth(id) : "")
            .addAllJobFiles(jobFiles)
            .setOwner(owner)
            .build();
    records.save(rec);
    log.info("{}: vhost {} started as {}, init pid {}", who, id, JobOwner.describe(owner), pid);
    return CreateVhostResponse.newBuilder()
        .setPlacement(records.placement(rec))
        .setLogPath(logFile.toString())
        .build();
  }

  /**
   * A networked vhost's command waits for its ready file (written once the job's network is
   * configured on every node); its init runs the spawn service for cohort-rsh, and mpirun gets the
   * job's hostfile.
   */
  private List<String> networkedCommand(
      CreateVhostRequest req,
      Path dir,
      List<String> command,
      Map<String, String> env,
      List<String> initOptions)
      throws IOException {
    Path tokenFile = dir.resolve("token");
    Files.deleteIfExists(dir.resolve(JobNetwork.READY_FILE));
    Files.writeString(tokenFile, req.getToken() + "\n");
    initOptions.addAll(
        List.of(
            "--spawn-port", Integer.toString(SPAWN_PORT), "--token-file", tokenFile.toString()));
    List<String> wrapped =
        new ArrayList<>(
            List.of(
                "/bin/sh",
                "-c",
                "while [ ! -e \"$0\" ]; do sleep 0.02; done; exec \"$@\"",
                dir.resolve(JobNetwork.READY_FILE).toString()));
    wrapped.addAll(command);
    if (req.getPeersCount() > 0) {
      Path hostfile = dir.resolve("hostfile");
      Files.write(hostfile, VhostNetwork.hostfile(req.getPeersList(), req.getSlots()));
      env.put("OMPI_MCA_plm_rsh_agent", rshPath.toString());
      env.put("OMPI_MCA_orte_default_hostfile", hostfile.toString());
      env.put("OMPI_MCA_btl_tcp_if_include", "eth0");
      env.put("OMPI_MCA_oob_tcp_if_include", "eth0");
      if (agentsForward) {
        // On the user-space path the agents forward traffic between vhosts on different
        // nodes: ranks that poll with nothing to do yield the core to them (8 B MPI round
        // trip across nodes 290 → 150 µs on 2 cores). A job may still set it to 0.
        env.putIfAbsent("OMPI_MCA_mpi_yield_when_idle", "1");
      }
      env.put("COHORT_TOKEN", req.getToken());
      env.put("COHORT_SPAWN_PORT", Integer.toString(SPAWN_PORT));
    }
    return wrapped;
  }

  /** The vhost as it is now; a pure query. */
  GetVhostResponse get(String vhostId) {
    VhostRecord rec = records.observe(vhostId);
    long size;
    try {
      size = Files.size(Path.of(rec.getLogPath()));
    } catch (IOException e) {
      size = -1;
    }
    return GetVhostResponse.newBuilder()
        .setState(rec.getState())
        .setExitCode(rec.getExitCode())
        .setExitSignal(rec.getExitSignal())
        .setPlacement(records.placement(rec))
        .setLogPath(rec.getLogPath())
        .setLogSize(size)
        .build();
  }

  /**
   * Sends a signal to a running vhost's main command: to its init, which forwards it to the
   * command's process group (the signals it forwards are those {@link JobSignals} allows).
   */
  void signal(String vhostId, int signal) {
    JobSignals.require(signal);
    VhostRecord rec = records.requireRunning(vhostId, "signal");
    ProcessIdentity init = VhostRecords.identity(rec);
    if (!init.signal(signal)) {
      throw CohortException.precondition("vhost %s is no longer running", vhostId);
    }
    log.info("{}: signal {} sent to vhost {}", who, signal, vhostId);
  }

  /**
   * Ends a vhost and cleans up after it: a running one is killed (KILLED), one whose processes
   * ended is recorded as they ended; either way its node-side link goes. Idempotent.
   */
  VhostState kill(String vhostId) {
    VhostRecord stored = records.load(vhostId);
    VhostRecord rec = records.observe(stored);
    if (rec.getState() == VhostState.VHOST_STATE_RUNNING) {
      ProcessIdentity init = VhostRecords.identity(rec);
      init.kill();
      try {
        if (!init.awaitExit(10_000)) {
          throw CohortException.internal(
              "vhost " + vhostId + " (pid " + init.pid() + ") did not die after SIGKILL", null);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw CohortException.internal("interrupted while ending vhost " + vhostId, e);
      }
      rec = rec.toBuilder().setState(VhostState.VHOST_STATE_KILLED).setPid(0).build();
      log.info("{}: vhost {} killed", who, vhostId);
    }
    if (!rec.equals(stored)) {
      records.save(rec);
    }
    dropLink(rec);
    return rec.getState();
  }

  /**
   * At the agent's start: wakes the tasks of running vhosts that a dump nobody finished left
   * stopped ({@link StoppedTasks}). Returns how many were continued.
   */
  int resumeStopped() {
    int continued = 0;
    for (String vhost : records.all()) {
      try {
        VhostRecord rec = records.observe(vhost);
        if (rec.getState() == VhostState.VHOST_STATE_RUNNING) {
          continued +=
              StoppedTasks.resume(VhostRecords.identity(rec), who + ": vhost " + vhost).size();
        }
      } catch (RuntimeException e) {
        log.warn("{}: cannot check vhost {} for stopped tasks: {}", who, vhost, e.toString());
      }
    }
    return continued;
  }

  /**
   * Removes the node side of a dead vhost's link (see {@link VhostNetwork#removeStale}) and, when
   * no other vhost of its job runs here, what the node held for the job.
   */
  void dropLink(VhostRecord rec) {
    if (!rec.getAddress().isEmpty() && config.vhostNetworking()) {
      network.removeStale(rec.getVhostId());
      boolean last =
          records.ofJob(rec.getJobId()).stream()
              .filter(v -> !v.equals(rec.getVhostId()))
              .noneMatch(v -> records.observe(v).getState() == VhostState.VHOST_STATE_RUNNING);
      if (last) {
        jobGone.accept(rec);
      }
    }
  }

  /** The job's environment plus what Open MPI needs to run in a vhost as {@code owner}. */
  static Map<String, String> jobEnvironment(Iterable<String> env, Owner owner) {
    Map<String, String> m = new HashMap<>();
    for (String kv : env) {
      int eq = kv.indexOf('=');
      if (eq > 0) {
        m.put(kv.substring(0, eq), kv.substring(eq + 1));
      }
    }
    JobOwner.runAsRootVariables(owner, m);
    // A vhost often has fewer cores than ranks (and CRIU-restored jobs must not depend on the
    // node's core count): let mpirun place more ranks than cores.
    m.putIfAbsent("OMPI_MCA_rmaps_base_oversubscribe", "1");
    // No binding of ranks to cores: each vhost's orted would bind its ranks to what it thinks
    // are its first cores, so two vhosts on one node pile their ranks onto the same cores
    // (an MPI ping-pong between them took 8 ms a round trip instead of 20 µs); and CRIU would
    // restore a binding to cores the restart node may not have.
    m.putIfAbsent("OMPI_MCA_hwloc_base_binding_policy", "none");
    // (For another owner cohort-init gives login(1)'s PATH when the job has none.)
    if (JobOwner.isRoot(owner)) {
      m.putIfAbsent("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
    return m;
  }
}
