package io.cohort.coordinator;

import io.cohort.common.Caller;
import io.cohort.common.CohortException;
import io.cohort.common.Ids;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.NodeInfo;
import io.cohort.proto.v1.Owner;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Who may touch a job: its owner or root, as with signals. A job's checkpoints are its owner's. The
 * check runs before the call does anything: a job's owner never changes, so nothing can make the
 * answer stale. Root is never checked, so root's calls behave exactly as before owners existed.
 */
final class JobAccess {
  private final Function<String, Owner> ownerOf;

  /** {@code ownerOf} gives a job's owner, NOT_FOUND for an unknown job. */
  JobAccess(Function<String, Owner> ownerOf) {
    this.ownerOf = ownerOf;
  }

  /** PERMISSION_DENIED unless the caller may touch the job {@code jobId}. */
  void requireJob(Caller caller, String jobId) {
    if (caller.isRoot()) {
      return;
    }
    Owner owner = ownerOf.apply(jobId);
    if (!caller.mayTouch(owner)) {
      throw CohortException.denied(
          "job %s belongs to %s, not to %s", jobId, Caller.name(owner), caller.who());
    }
  }

  /** As {@link #requireJob}, for a checkpoint id: a checkpoint is its job's owner's. */
  void requireCheckpoint(Caller caller, String checkpointId) {
    if (caller.isRoot()) {
      return;
    }
    String jobId = Ids.jobOfCheckpoint(checkpointId);
    Owner owner = ownerOf.apply(jobId);
    if (!caller.mayTouch(owner)) {
      throw CohortException.denied(
          "checkpoint %s (of job %s) belongs to %s, not to %s",
          checkpointId, jobId, Caller.name(owner), caller.who());
    }
  }

  /** For a restart's target, a job id or a checkpoint id; a malformed one is left to the call. */
  void requireTarget(Caller caller, String target) {
    if (Ids.isCheckpoint(target)) {
      requireCheckpoint(caller, target);
    } else if (Ids.isJob(target)) {
      requireJob(caller, target);
    }
  }

  /** Root only: for what acts on a node and so on every user's jobs. */
  static void requireRoot(Caller caller, String what) {
    if (!caller.isRoot()) {
      throw CohortException.denied("only root may %s (you are %s)", what, caller.who());
    }
  }

  /** The jobs the caller may see: their own, or all for root. */
  static List<JobInfo> visibleJobs(Caller caller, List<JobInfo> jobs) {
    if (caller.isRoot()) {
      return jobs;
    }
    return jobs.stream().filter(j -> caller.mayTouch(j.getOwner())).toList();
  }

  /**
   * The nodes as the caller may see them: for root as they are; for anyone else each node's count
   * of running vhosts is of their own jobs' (another user's work on a node is not theirs to see).
   */
  static List<NodeInfo> visibleNodes(Caller caller, List<NodeInfo> nodes, List<JobInfo> jobs) {
    if (caller.isRoot()) {
      return nodes;
    }
    Map<String, Integer> mine = new HashMap<>();
    for (JobInfo j : visibleJobs(caller, jobs)) {
      if (j.getState() == JobState.JOB_STATE_RUNNING) {
        j.getVhostsList().forEach(v -> mine.merge(v.getNode(), 1, Integer::sum));
      }
    }
    return nodes.stream()
        .map(n -> n.toBuilder().setRunningVhosts(mine.getOrDefault(n.getNode(), 0)).build())
        .toList();
  }

  /** The checkpoints the caller may see: those of their own jobs, or all for root. */
  List<CheckpointInfo> visibleCheckpoints(Caller caller, List<CheckpointInfo> checkpoints) {
    if (caller.isRoot()) {
      return checkpoints;
    }
    Map<String, Boolean> mine = new HashMap<>();
    return checkpoints.stream()
        .filter(
            c ->
                mine.computeIfAbsent(
                    c.getJobId(),
                    job -> {
                      try {
                        return caller.mayTouch(ownerOf.apply(job));
                      } catch (CohortException gone) {
                        return false; // a checkpoint whose job record is gone: root's to see
                      }
                    }))
        .toList();
  }
}
