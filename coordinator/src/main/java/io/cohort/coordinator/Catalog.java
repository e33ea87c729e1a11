package io.cohort.coordinator;

import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.Ids;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobNetworkPlan;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.NodeRecord;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * The coordinator's persistent catalog of jobs and committed checkpoints, one JSON file per record
 * under {@code root}, each written atomically. A checkpoint exists for clients exactly when its
 * record file exists: writing that file is the global commit.
 *
 * <pre>
 *   jobs/ID.json            JobRecord
 *   jobs/ID.lock            held while the job's record changes (checkpoint, restart, kill,
 *                           the reconcile step); queries never take it and never write
 *   checkpoints/ID.EPOCH.json  CheckpointInfo
 *   checkpoints/ID.EPOCH.lock  held while a checkpoint's record changes after its commit
 *                           (partner copies, restart copies)
 *   nodes/NAME.json         NodeRecord: a node declared dead
 *   networks/ID.json        JobNetworkPlan: the job's block of the address pool ({@link
 *                           JobNetworks}), changed under networks.lock
 *   next-job-id             counter, changed under catalog.lock
 * </pre>
 *
 * Locks are file locks plus in-process locks, so several CLI processes using the embedded
 * coordinator on one machine do not step on each other.
 *
 * <p>Checkpoint records are signed with the cluster's checkpoint key at every write; reads return
 * them as they are (a listing, the sweep, an epoch's outcome go by their existence), and what acts
 * on one (a restart, a change of its copies) asks {@link #requireTrusted} or is refused.
 */
final class Catalog {
  private final Path root;
  private final CheckpointKey key;
  private final ConcurrentHashMap<String, ReentrantLock> localLocks = new ConcurrentHashMap<>();

  /** The catalog in {@code root}, whose checkpoint records {@code key} signs and verifies. */
  Catalog(Path root, CheckpointKey key) {
    this.root = root;
    this.key = key;
    try {
      Files.createDirectories(root.resolve("jobs"));
      Files.createDirectories(root.resolve("checkpoints"));
      Files.createDirectories(root.resolve("nodes"));
      Files.createDirectories(root.resolve("networks"));
    } catch (IOException e) {
      throw DurableFiles.failure("cannot create catalog " + root, e);
    }
  }

  /**
   * An exclusive hold on a name, released by close(). Holders keep it in a try-with-resources block
   * and never name it inside, which javac's -Xlint:try reports: a method that holds one is marked
   * {@code @SuppressWarnings("try")}.
   */
  interface Hold extends AutoCloseable {
    @Override
    void close();
  }

  /** Holds the job's lock (in this process and across processes on this machine). */
  Hold lockJob(String jobId) {
    return lock(root.resolve("jobs").resolve(Ids.requireJob(jobId) + ".lock"));
  }

  /**
   * The job's lock if nobody holds it now, else empty (without waiting): for the reconcile step a
   * query asks for, which leaves a busy job to whoever holds its lock.
   */
  Optional<Hold> tryLockJob(String jobId) {
    Path file = root.resolve("jobs").resolve(Ids.requireJob(jobId) + ".lock");
    ReentrantLock local = localLocks.computeIfAbsent(file.toString(), k -> new ReentrantLock());
    if (local.isHeldByCurrentThread() || !local.tryLock()) {
      return Optional.empty(); // (held by this thread: a file lock cannot be taken twice)
    }
    try {
      FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      FileLock fl = ch.tryLock();
      if (fl == null) { // another process (an embedded CLI) holds it
        ch.close();
        local.unlock();
        return Optional.empty();
      }
      return Optional.of(release(ch, fl, local));
    } catch (IOException | RuntimeException e) {
      local.unlock();
      throw CohortException.internal("cannot lock " + file + ": " + e, e);
    }
  }

  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  String allocateJobId() {
    try (Hold h = lock(root.resolve("catalog.lock"))) {
      Path counter = root.resolve("next-job-id");
      long next = 1;
      if (Files.exists(counter)) {
        next = Long.parseLong(Files.readString(counter).strip());
      }
      DurableFiles.writeAtomically(counter, (next + 1 + "\n").getBytes(StandardCharsets.US_ASCII));
      return Long.toString(next);
    } catch (IOException | NumberFormatException e) {
      throw CohortException.internal("cannot allocate a job id in " + root + ": " + e, e);
    }
  }

  void saveJob(JobRecord job) {
    ProtoJson.write(jobFile(job.getInfo().getJobId()), job);
  }

  JobRecord job(String jobId) {
    Path f = jobFile(Ids.requireJob(jobId));
    if (!Files.exists(f)) {
      throw CohortException.notFound("job %s does not exist (see `cohort ps`)", jobId);
    }
    return ProtoJson.read(f, JobRecord.newBuilder()).build();
  }

  List<JobRecord> jobs() {
    List<JobRecord> out = new ArrayList<>();
    for (Path f : list(root.resolve("jobs"))) {
      String name = f.getFileName().toString();
      if (name.endsWith(".json") && Ids.isJob(name.substring(0, name.length() - 5))) {
        out.add(ProtoJson.read(f, JobRecord.newBuilder()).build());
      }
    }
    out.sort(Comparator.comparingLong(j -> Long.parseLong(j.getInfo().getJobId())));
    return out;
  }

  /** The global commit of a checkpoint (signed). */
  void commitCheckpoint(CheckpointInfo info) {
    ProtoJson.write(checkpointFile(info.getCheckpointId()), key.sign(info));
  }

  /**
   * {@code info} if a restart of {@code job} may act on it; else DATA_LOSS (not signed with this
   * cluster's key, or another job's) or PERMISSION_DENIED (taken of another owner). See {@link
   * CheckpointRecords#requireTrusted}.
   */
  CheckpointInfo requireTrusted(CheckpointInfo info, JobInfo job) {
    return CheckpointRecords.requireTrusted(key, info, job);
  }

  Optional<CheckpointInfo> checkpoint(String ckpt) {
    Path f = checkpointFile(Ids.requireCheckpoint(ckpt));
    if (!Files.exists(f)) {
      return Optional.empty();
    }
    return Optional.of(ProtoJson.read(f, CheckpointInfo.newBuilder()).build());
  }

  /** Committed checkpoints, oldest first; only one job's when {@code jobId} is not empty. */
  List<CheckpointInfo> checkpoints(String jobId) {
    List<CheckpointInfo> out = new ArrayList<>();
    for (Path f : list(root.resolve("checkpoints"))) {
      String name = f.getFileName().toString();
      if (!name.endsWith(".json")) {
        continue;
      }
      String id = name.substring(0, name.length() - 5);
      if (Ids.isCheckpoint(id) && (jobId.isEmpty() || Ids.jobOfCheckpoint(id).equals(jobId))) {
        out.add(ProtoJson.read(f, CheckpointInfo.newBuilder()).build());
      }
    }
    out.sort(
        Comparator.comparingLong((CheckpointInfo c) -> Long.parseLong(c.getJobId()))
            .thenComparingLong(CheckpointInfo::getEpoch));
    return out;
  }

  /**
   * Changes a committed checkpoint's record (its copies) under the record's own lock, so that the
   * background copies, restarts and removals never lose each other's changes. Empty, and nothing
   * written, when the checkpoint no longer exists (removed meanwhile). A record that is not signed
   * with this cluster's key is refused (DATA_LOSS), never signed anew with the change.
   */
  @SuppressWarnings("try") // a Catalog.Hold, held for the block
  Optional<CheckpointInfo> updateCheckpoint(String ckpt, UnaryOperator<CheckpointInfo> change) {
    try (Hold h = lock(root.resolve("checkpoints").resolve(ckpt + ".lock"))) {
      Optional<CheckpointInfo> now = checkpoint(ckpt);
      if (now.isEmpty()) {
        return now;
      }
      if (!key.signed(now.get())) {
        throw CohortException.dataLoss(
            "checkpoint %s: its record is not signed by this cluster's checkpoint key (edited, or "
                + "from another cluster); it is left as it is",
            ckpt);
      }
      CheckpointInfo changed = key.sign(change.apply(now.get()));
      if (!changed.equals(now.get())) {
        ProtoJson.write(checkpointFile(ckpt), changed);
      }
      return Optional.of(changed);
    }
  }

  /** Holds the lock of the job network plans ({@link JobNetworks}). */
  Hold lockNetworks() {
    return lock(root.resolve("networks.lock"));
  }

  /** The network plans of jobs, by job id. */
  Map<String, JobNetworkPlan> networks() {
    Map<String, JobNetworkPlan> out = new TreeMap<>();
    for (Path f : list(root.resolve("networks"))) {
      String name = f.getFileName().toString();
      if (name.endsWith(".json") && Ids.isJob(name.substring(0, name.length() - 5))) {
        out.put(
            name.substring(0, name.length() - 5),
            ProtoJson.read(f, JobNetworkPlan.newBuilder()).build());
      }
    }
    return out;
  }

  void saveNetwork(String jobId, JobNetworkPlan plan) {
    ProtoJson.write(root.resolve("networks").resolve(Ids.requireJob(jobId) + ".json"), plan);
  }

  void deleteNetwork(String jobId) {
    try {
      Files.deleteIfExists(root.resolve("networks").resolve(Ids.requireJob(jobId) + ".json"));
      DurableFiles.fsyncDirectory(root.resolve("networks"));
    } catch (IOException e) {
      throw DurableFiles.failure("cannot delete the network plan of job " + jobId, e);
    }
  }

  /** The job's record, or empty if there is none (yet: a run in progress saves it last). */
  Optional<JobRecord> findJob(String jobId) {
    Path f = jobFile(Ids.requireJob(jobId));
    return Files.exists(f)
        ? Optional.of(ProtoJson.read(f, JobRecord.newBuilder()).build())
        : Optional.empty();
  }

  /** Records that a node was declared dead. */
  void saveDeadNode(NodeRecord node) {
    ProtoJson.write(root.resolve("nodes").resolve(node.getNode() + ".json"), node);
  }

  /** Forgets that a node was declared dead (it came back and its stale vhosts were ended). */
  void deleteDeadNode(String node) {
    try {
      Files.deleteIfExists(root.resolve("nodes").resolve(node + ".json"));
      DurableFiles.fsyncDirectory(root.resolve("nodes"));
    } catch (IOException e) {
      throw DurableFiles.failure("cannot delete node record " + node, e);
    }
  }

  /** The nodes declared dead. */
  List<NodeRecord> deadNodes() {
    List<NodeRecord> out = new ArrayList<>();
    for (Path f : list(root.resolve("nodes"))) {
      if (f.getFileName().toString().endsWith(".json")) {
        out.add(ProtoJson.read(f, NodeRecord.newBuilder()).build());
      }
    }
    return out;
  }

  void deleteCheckpoint(String ckpt) {
    try {
      Files.deleteIfExists(checkpointFile(ckpt));
      Files.deleteIfExists(root.resolve("checkpoints").resolve(ckpt + ".lock"));
      DurableFiles.fsyncDirectory(root.resolve("checkpoints"));
    } catch (IOException e) {
      throw DurableFiles.failure("cannot delete checkpoint record " + ckpt, e);
    }
  }

  private Path jobFile(String jobId) {
    return root.resolve("jobs").resolve(jobId + ".json");
  }

  private Path checkpointFile(String ckpt) {
    return root.resolve("checkpoints").resolve(ckpt + ".json");
  }

  private static List<Path> list(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      return s.toList();
    } catch (IOException e) {
      throw DurableFiles.failure("cannot list " + dir, e);
    }
  }

  private Hold lock(Path file) {
    ReentrantLock local = localLocks.computeIfAbsent(file.toString(), k -> new ReentrantLock());
    local.lock();
    try {
      FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      FileLock fl = ch.lock();
      return release(ch, fl, local);
    } catch (IOException | RuntimeException e) {
      local.unlock();
      throw CohortException.internal("cannot lock " + file + ": " + e, e);
    }
  }

  private static Hold release(FileChannel ch, FileLock fl, ReentrantLock local) {
    return () -> {
      try {
        fl.release();
        ch.close();
      } catch (IOException ignored) {
        // closing the channel releases the lock anyway
      } finally {
        local.unlock();
      }
    };
  }
}
