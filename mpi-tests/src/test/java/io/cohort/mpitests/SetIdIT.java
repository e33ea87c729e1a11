package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CheckpointKey;
import io.cohort.common.ProtoJson;
import io.cohort.mpitests.CohortHarness.Result;
import io.cohort.mpitests.UnixAccounts.Account;
import io.cohort.proto.criu.CoreEntry;
import io.cohort.proto.criu.PstreeEntry;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.ImageManifest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * No escalation through a checkpoint (issue 15, part 5), with a real unprivileged account on the
 * emulated cluster running the real `cohort` CLI as itself: a job that runs a set-uid program is
 * refused at checkpoint before it is frozen, and runs on; an image edited to make one of the job's
 * processes root, its manifest and record made to match again by an attacker who even holds the
 * cluster's checkpoint key, is refused at restart, and nothing runs; the checkpoint before it,
 * untouched, restarts with the owner's credentials in every process (an MPI job on two nodes:
 * mpirun, the orteds and the ranks).
 */
class SetIdIT {
  private static final Pattern PROGRESS = Pattern.compile("(?m)^(?:tick|iter) (\\d+)[ \n]");

  private static final String TICKER =
      "i=0; while [ $i -lt 3000 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done";

  private static CohortHarness cohort;
  private static UnixAccounts accounts;
  private static Account carol;
  private static Path cli;

  @BeforeAll
  static void up() throws Exception {
    accounts = new UnixAccounts();
    cohort = new CohortHarness("setid");
    try {
      carol = accounts.create("c");
      cli = accounts.cli();
      cohort.clusterUp(2, "cohortsi", "198.18.93");
    } catch (Exception | AssertionError e) {
      down();
      throw e;
    }
  }

  @AfterAll
  static void down() throws Exception {
    UnixAccounts.closeAll(cohort, accounts);
  }

  private static Result as(String... args) {
    return UnixAccounts.cohortAs(carol, cli, cohort.home, args);
  }

  /** Starts {@code command} as carol on {@code nodes}, with no partner copy of its images. */
  private static String run(String nodes, String... command) {
    List<String> args =
        new ArrayList<>(
            List.of("run", "--detach", "--json", "--images", "none", "--nodes", nodes, "--"));
    args.addAll(List.of(command));
    return as(args.toArray(String[]::new)).ok().json().get("job").getAsString();
  }

  @Test
  void aJobRunningASetUidProgramIsRefusedAtCheckpointAndRunsOn() throws Exception {
    // A copy of sleep, set-uid root, where carol can run it (removed with the accounts).
    Path sleeper = accounts.open(Path.of("/usr/bin/sleep"), "setid-program/sleeper");
    UnixAccounts.exec(List.of("chmod", "4755", sleeper.toString()), java.util.Map.of());
    assertEquals(0, UnixAccounts.as(carol, List.of("test", "-x", sleeper.toString())).rc());

    String job = run("n1", "sh", "-c", sleeper + " 100000 & " + TICKER);
    awaitProgress(job, 3);
    long init = cohort.vhostInit("n1", job + "-0");
    long setuid = awaitProcess(init, sleeper);

    Result r = as("checkpoint", job);
    assertNotEquals(0, r.rc(), "a job running a set-uid program was checkpointed: " + r.out());
    assertTrue(
        r.err().contains("job " + job + ": process " + setuid + " (sleeper, " + sleeper)
            && r.err().contains("runs a set-uid program")
            && r.err().contains("Cohort does not checkpoint set-id programs"),
        r.err());
    System.out.println("refused checkpoint: " + r.err().strip());

    // Not frozen, runs on, no checkpoint.
    assertEquals(List.of(), ProcTasks.stoppedTasks(init));
    awaitProgress(job, progress(job) + 2);
    assertEquals("JOB_STATE_RUNNING", cohort.state(job));
    assertEquals(0, cohort.checkpoints(job).size());
    as("kill", job).ok();
  }

  @Test
  void anImageEditedToMakeAProcessRootIsRefusedAtRestart() throws Exception {
    String[] ring = CohortHarness.cRing(4, 100000, 30);
    ring[ring.length - 3] = accounts.open(CohortHarness.RING, "mpi/ring").toString();
    String job = run("n1,n2", ring);
    awaitProgress(job, 30);
    String good = as("checkpoint", job).ok().out().strip();
    awaitProgress(job, progress(job) + 20);
    String edited = as("checkpoint", "--stop", job).ok().out().strip();
    assertEquals(List.of(job + ".1", job + ".2"), List.of(good, edited));
    assertNotEquals("JOB_STATE_RUNNING", cohort.state(job));

    // The attacker: mpirun (the child of pid 1 in the head vhost) made root in its core image, the
    // manifest's digest of that file and the record's digest of the manifest recomputed.
    Path image = imageDir(edited, job + "-0");
    PstreeEntry main = null;
    for (byte[] e : entries(image.resolve("criu/pstree.img"))) {
      PstreeEntry t = PstreeEntry.parseFrom(e);
      main = main == null && t.getPpid() == 1 ? t : main;
    }
    assertTrue(main != null, "no child of pid 1 in " + image);
    Path core = image.resolve("criu/core-" + main.getPid() + ".img");
    CoreEntry c = CoreEntry.parseFrom(entries(core).get(0));
    CoreEntry.Builder b = c.toBuilder();
    b.getThreadCoreBuilder().getCredsBuilder().setUid(0).setEuid(0).setSuid(0).setFsuid(0);
    rewriteFirst(core, b.build().toByteArray());
    reseal(image, "core-" + main.getPid() + ".img", edited, job + "-0");

    Result r = as("restart", "--detach", edited);
    assertNotEquals(0, r.rc(), "an image edited to run root was restored: " + r.out());
    String comm = c.getTc().getComm();
    assertTrue(
        r.err()
                .contains(
                    "would run processes with other credentials than its owner's: process "
                        + main.getPid()
                        + " ("
                        + comm)
            && r.err().contains(") runs as uid 0 gid " + carol.gid())
            && r.err().contains("its owner " + carol.name() + " (" + carol.uid()),
        r.err());
    System.out.println("refused restart: " + r.err().strip());
    assertNotEquals("JOB_STATE_RUNNING", cohort.state(job));
    assertEquals(List.of(), processesOf(carol.uid()), "nothing of the job runs");

    // The untouched checkpoint restarts on both nodes, every process but pid 1 the owner's: the
    // orted and ranks of the second vhost too (children of its pid 1's spawn service).
    as("restart", "--detach", good).ok();
    awaitProgress(job, progress(job) + 20);
    String owners = String.join("\t", Collections.nCopies(4, Integer.toString(carol.uid())));
    for (int v = 0; v < 2; v++) {
      String node = "n" + (v + 1);
      String vhost = job + "-" + v;
      List<Long> procs = descendants(cohort.vhostInit(node, vhost));
      assertTrue(procs.size() >= 3, "the restored processes of " + vhost + ": " + procs);
      for (long p : procs) {
        assertEquals(owners, uids(p), "real, effective, saved and fs uid of pid " + p);
      }
      // The agent checked the good image too (and says what it cost).
      List<String> checked =
          Files.readAllLines(cohort.home.resolve("cluster/logs/" + node + ".log")).stream()
              .filter(l -> l.contains("have the credentials of " + carol.name()))
              .toList();
      assertTrue(checked.stream().anyMatch(l -> l.contains(good + "/" + vhost)), "" + checked);
      checked.forEach(l -> System.out.println("agent: " + l));
    }
    as("kill", job).ok();
  }

  // ------------------------------------------------------------------ the job

  private static void awaitProgress(String job, int n) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    while (progress(job) < n) {
      assertTrue(System.nanoTime() < deadline, "job " + job + " did not get to " + n);
      Thread.sleep(200);
    }
  }

  /** The last "tick N" or "iter N" of the job's output (its head vhost is on n1). */
  private static int progress(String job) {
    Matcher m = PROGRESS.matcher(ProcTasks.readOrEmpty(cohort.clusterLog("n1", job)));
    int last = -1;
    while (m.find()) {
      last = Integer.parseInt(m.group(1));
    }
    return last;
  }

  /** The host pid of the process of the vhost under {@code init} that runs {@code exe}. */
  private static long awaitProcess(long init, Path exe) throws InterruptedException {
    for (int i = 0; i < 300; i++) {
      for (long p : descendants(init)) {
        try {
          if (Files.readSymbolicLink(Path.of("/proc/" + p + "/exe")).equals(exe)) {
            return p;
          }
        } catch (IOException gone) {
          // ended meanwhile
        }
      }
      Thread.sleep(100);
    }
    throw new AssertionError(exe + " does not run in the vhost of " + init);
  }

  private static List<Long> descendants(long init) {
    return ProcessHandle.of(init).stream()
        .flatMap(ProcessHandle::descendants)
        .map(ProcessHandle::pid)
        .toList();
  }

  /** "real\teffective\tsaved\tfs" uids of a process, from /proc. */
  private static String uids(long pid) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (line.startsWith("Uid:")) {
        return line.substring(4).strip();
      }
    }
    throw new AssertionError("no Uid line for " + pid);
  }

  /** Every process of {@code uid} on the machine (the account is the test's own). */
  private static List<Long> processesOf(int uid) {
    List<Long> out = new ArrayList<>();
    for (ProcessHandle p : ProcessHandle.allProcesses().toList()) {
      try {
        if (uids(p.pid()).startsWith(uid + "\t")) {
          out.add(p.pid());
        }
      } catch (IOException | AssertionError gone) {
        // ended meanwhile
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ the attacker's edit

  private static Path imageDir(String ckpt, String vhost) throws IOException {
    try (Stream<Path> walk = Files.walk(cohort.home.resolve("cluster/nodes"))) {
      return walk.filter(p -> p.endsWith(Path.of(ckpt, vhost)))
          .findFirst()
          .orElseThrow(() -> new AssertionError("no image of " + ckpt + "/" + vhost));
    }
  }

  /** The entries of a CRIU image file: two magics, then (length, protobuf message)*. */
  private static List<byte[]> entries(Path file) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    b.position(8);
    List<byte[]> out = new ArrayList<>();
    while (b.hasRemaining()) {
      byte[] e = new byte[b.getInt()];
      b.get(e);
      out.add(e);
    }
    return out;
  }

  private static void rewriteFirst(Path file, byte[] entry) throws IOException {
    byte[] old = Files.readAllBytes(file);
    int restAt = 12 + ByteBuffer.wrap(old, 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
    ByteBuffer b =
        ByteBuffer.allocate(12 + entry.length + old.length - restAt).order(ByteOrder.LITTLE_ENDIAN);
    b.put(old, 0, 8).putInt(entry.length).put(entry).put(old, restAt, old.length - restAt);
    Files.write(file, b.array());
  }

  /**
   * What the daemons check, redone by an attacker who also holds the cluster's checkpoint key (the
   * key is the first line of defence, see SignedCheckpointsIT; this test is about the second): the
   * edited file's size and digest in the manifest, the manifest signed again, its digest in the
   * coordinator's record, the record signed again.
   */
  private static void reseal(Path image, String file, String ckpt, String vhost) throws Exception {
    CheckpointKey key =
        CheckpointKey.load(cohort.home.resolve("cluster/tls").resolve(CheckpointKey.FILE));
    Path manifest = image.resolve("manifest.json");
    ImageManifest.Builder m = ProtoJson.read(manifest, ImageManifest.newBuilder());
    byte[] edited = Files.readAllBytes(image.resolve("criu").resolve(file));
    boolean found = false;
    for (int i = 0; i < m.getFilesCount(); i++) {
      if (m.getFiles(i).getPath().equals(file)) {
        m.setFiles(i, m.getFiles(i).toBuilder().setSize(edited.length).setSha256(sha256(edited)));
        found = true;
      }
    }
    assertTrue(found, file + " is not in the manifest " + manifest);
    byte[] bytes = ProtoJson.write(manifest, key.sign(m.build()));
    Path record = cohort.home.resolve("cluster/coordinator/checkpoints/" + ckpt + ".json");
    CheckpointInfo r = ProtoJson.read(record, CheckpointInfo.newBuilder()).build();
    ProtoJson.write(
        record, key.sign(r.toBuilder().putManifestSha256(vhost, sha256(bytes)).build()));
  }

  private static String sha256(byte[] b) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
  }
}
