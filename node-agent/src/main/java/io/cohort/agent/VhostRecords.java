package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.VhostPlacement;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * The vhost records of a node: {@code vhosts/VHOST/record.json} (a {@link VhostRecord}), beside the
 * vhost's {@code output.log} and {@code status} (written by the vhost init when the command ends).
 *
 * <p>{@link #observe} is a pure query: it tells what a RUNNING record's processes are doing now
 * without writing anything. Records change only through {@link #save}, called by the vhost's
 * lifecycle steps ({@link Vhosts}, {@link CheckpointParticipant}, {@link Restorer}).
 */
final class VhostRecords {
  private final Path dir;
  private final String node;

  VhostRecords(Path dir, String node) {
    this.dir = dir;
    this.node = node;
  }

  Path vhostDir(String vhostId) {
    return dir.resolve(vhostId);
  }

  boolean exists(String vhostId) {
    return Files.exists(vhostDir(Ids.requireVhost(vhostId)).resolve("record.json"));
  }

  VhostRecord load(String vhostId) {
    Path f = vhostDir(Ids.requireVhost(vhostId)).resolve("record.json");
    if (!Files.exists(f)) {
      throw CohortException.notFound("vhost %s is not known on node %s", vhostId, node);
    }
    return ProtoJson.read(f, VhostRecord.newBuilder()).build();
  }

  void save(VhostRecord rec) {
    ProtoJson.write(vhostDir(rec.getVhostId()).resolve("record.json"), rec);
  }

  /** The ids of this node's vhosts of a job. */
  List<String> ofJob(String jobId) {
    return all().stream().filter(id -> id.startsWith(jobId + "-")).toList();
  }

  /** The ids of every vhost this node has a directory of. */
  List<String> all() {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(d -> d.getFileName().toString()).sorted().toList();
    } catch (IOException e) {
      return List.of();
    }
  }

  /** The job's vhosts on this node that run now, and {@code rec}'s own. */
  Set<String> runningOfJob(VhostRecord rec) {
    Set<String> local = new TreeSet<>();
    for (String id : ofJob(rec.getJobId())) {
      try {
        if (observe(id).getState() == VhostState.VHOST_STATE_RUNNING) {
          local.add(id);
        }
      } catch (CohortException notAVhost) {
        // a directory without a record (any more)
      }
    }
    local.add(rec.getVhostId());
    return local;
  }

  /**
   * Records that a checkpoint ends the vhost (--stop): before its tasks end, so that nobody takes
   * the vhost for crashed.
   */
  void markStopped(VhostRecord rec) {
    save(rec.toBuilder().setState(VhostState.VHOST_STATE_STOPPED).setPid(0).build());
  }

  /** Ends the vhost's init (and with it its pid namespace) if it still runs. */
  static void endInit(VhostRecord rec) {
    ProcessIdentity init = identity(rec);
    if (init.isAlive()) {
      init.kill();
    }
  }

  /**
   * The record as its processes are now: a RUNNING record whose init is gone is EXITED (with the
   * status the init wrote) or LOST (no status). Writes nothing.
   */
  VhostRecord observe(VhostRecord rec) {
    if (rec.getState() != VhostState.VHOST_STATE_RUNNING || identity(rec).isAlive()) {
      return rec;
    }
    VhostRecord.Builder b = rec.toBuilder().setPid(0);
    try {
      String[] status = Files.readString(Path.of(rec.getStatusPath())).trim().split(" ");
      b.setState(VhostState.VHOST_STATE_EXITED);
      if (status[0].equals("signaled")) {
        b.setExitSignal(Integer.parseInt(status[1]));
      } else {
        b.setExitCode(Integer.parseInt(status[1]));
      }
    } catch (IOException | RuntimeException e) {
      b.setState(VhostState.VHOST_STATE_LOST);
    }
    return b.build();
  }

  /** {@link #observe} of the stored record. */
  VhostRecord observe(String vhostId) {
    return observe(load(vhostId));
  }

  /** The observed record, which must be running for {@code what}. */
  VhostRecord requireRunning(String vhostId, String what) {
    VhostRecord rec = observe(vhostId);
    if (rec.getState() != VhostState.VHOST_STATE_RUNNING) {
      throw CohortException.precondition(
          "cannot %s job %s: it is not running (%s)", what, rec.getJobId(), describeState(rec));
    }
    return rec;
  }

  VhostPlacement placement(VhostRecord rec) {
    return VhostPlacement.newBuilder()
        .setVhostId(rec.getVhostId())
        .setNode(node)
        .setAddress(rec.getAddress())
        .setPid(rec.getState() == VhostState.VHOST_STATE_RUNNING ? rec.getPid() : 0)
        .setHostname(rec.getHostname())
        .build();
  }

  static ProcessIdentity identity(VhostRecord rec) {
    return new ProcessIdentity(rec.getPid(), rec.getPidStartTicks());
  }

  static String describeState(VhostRecord rec) {
    return switch (rec.getState()) {
      case VHOST_STATE_EXITED ->
          rec.getExitSignal() != 0
              ? "killed by signal " + rec.getExitSignal()
              : "exited with status " + rec.getExitCode();
      case VHOST_STATE_STOPPED -> "stopped by a checkpoint";
      case VHOST_STATE_KILLED -> "killed";
      case VHOST_STATE_LOST -> "lost: its processes vanished without an exit status";
      default -> rec.getState().name();
    };
  }
}
