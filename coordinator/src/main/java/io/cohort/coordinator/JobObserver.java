package io.cohort.coordinator;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.VhostPlacement;
import java.util.List;

/**
 * What a job is now: its record as the catalog has it, with its latest checkpoint and, for a
 * running job, the state its head vhost's agent reports. Only looks: it writes nothing and ends
 * nothing, and asks the agent with GetVhost, a pure query. Writing what it sees is the {@link
 * JobReconciler}'s, under the job's lock.
 */
final class JobObserver {
  private final Catalog catalog;
  private final AgentDirectory agents;

  JobObserver(Catalog catalog, AgentDirectory agents) {
    this.catalog = catalog;
    this.agents = agents;
  }

  /** The record as it would be if saved now; an unreachable agent leaves the state as known. */
  JobRecord observe(JobRecord rec) {
    JobInfo info = rec.getInfo();
    List<CheckpointInfo> ckpts = catalog.checkpoints(info.getJobId());
    String latest = ckpts.isEmpty() ? "" : ckpts.get(ckpts.size() - 1).getCheckpointId();
    JobInfo.Builder b = info.toBuilder().setLatestCheckpoint(latest);
    if (info.getState() == JobState.JOB_STATE_RUNNING) {
      VhostPlacement head = info.getVhosts(0);
      GetVhostResponse v;
      try {
        v = agents.agent(head.getNode()).getVhost(head.getVhostId());
      } catch (CohortException e) {
        if (e.kind() == CohortException.Kind.UNAVAILABLE
            || e.kind() == CohortException.Kind.DEADLINE_EXCEEDED) {
          return rec.toBuilder().setInfo(b).build(); // cannot tell: keep what we know
        }
        throw e;
      }
      switch (v.getState()) {
        case VHOST_STATE_EXITED ->
            b.setState(JobState.JOB_STATE_EXITED)
                .setExitCode(v.getExitCode())
                .setExitSignal(v.getExitSignal());
        case VHOST_STATE_STOPPED -> b.setState(JobState.JOB_STATE_STOPPED);
        case VHOST_STATE_KILLED -> b.setState(JobState.JOB_STATE_KILLED);
        case VHOST_STATE_LOST -> b.setState(JobState.JOB_STATE_LOST);
        default -> {}
      }
      b.setVhosts(0, v.getPlacement());
    }
    return rec.toBuilder().setInfo(b).build();
  }

  /** Whether what is seen differs from the record in a way the reconcile step writes. */
  static boolean drifted(JobRecord recorded, JobRecord observed) {
    return recorded.getInfo().getState() != observed.getInfo().getState();
  }

  static boolean ended(JobState s) {
    return s == JobState.JOB_STATE_EXITED
        || s == JobState.JOB_STATE_KILLED
        || s == JobState.JOB_STATE_LOST;
  }
}
