package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.criu.CoreEntry;
import io.cohort.proto.criu.MmEntry;
import io.cohort.proto.v1.Owner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The credentials read from a real CRIU image of a vhost of "nobody" (pid 1 cohort-init as root,
 * sleep, and a program of three threads as nobody), and images edited the way an attacker would:
 * every change that would give a process other credentials than the owner's is refused, naming it.
 */
class ImageCredentialsTest {
  private static final Owner NOBODY = RealVhost.NOBODY_OWNER;
  private static final String INIT = RealVhost.INIT.toString();

  private static Path work;
  private static Path image;
  private static Path threads;

  @BeforeAll
  static void dump() throws Exception {
    RealVhost.assumeAvailable();
    work = RealVhost.workDir("image-creds");
    threads = RealVhost.threadsProgram(work);
    try (RealVhost v =
        RealVhost.start(
            work,
            RealVhost.NOBODY,
            RealVhost.NOBODY,
            RealVhost.quoted(threads) + " & exec sleep 100000")) {
      image = v.dump();
    }
  }

  @AfterAll
  static void clean() throws IOException {
    RealVhost.deleteTree(work);
  }

  @Test
  void readsEveryTaskAndThreadOfTheImage() throws IOException {
    List<TaskCredentials> tasks = ImageCredentials.read(image);
    TaskCredentials init = tasks.get(0);
    assertEquals(List.of(1, 0, INIT), List.of(init.pid(), init.ppid(), init.exe()), "" + init);
    assertTrue(init.creds().rootUids() && init.creds().hasCapabilities(), "" + init);
    TaskCredentials.Creds nobody = TaskCredentials.Creds.of(NOBODY);
    List<TaskCredentials> job = tasks.subList(1, tasks.size());
    assertEquals(List.of("sleep", "threads"), job.stream().map(t -> t.comm()).distinct().toList());
    for (TaskCredentials t : job) {
      assertEquals(nobody, t.creds(), "" + t);
    }
    List<TaskCredentials> threaded = job.stream().filter(t -> t.comm().equals("threads")).toList();
    assertEquals(3, threaded.size(), "a core image per thread: " + threaded);
    assertEquals(threads.toString(), threaded.get(0).exe());
    assertEquals(2, threaded.get(0).ppid(), "the program is a child of sleep (pid 2)");
  }

  @Test
  void theOwnersImagePassesAndRootsIsNotChecked() {
    ImageCredentials.check(NOBODY, image, INIT, "checkpoint 1.1, vhost v1-0");
    ImageCredentials.check(Owner.getDefaultInstance(), Path.of("/nonexistent"), "", "root's");
  }

  @Test
  void anotherOwnerIsRefusedNamingTheProcessAndBothCredentials() {
    Owner alice =
        Owner.newBuilder().setUid(1234).setGid(1234).addGroups(27).setUser("alice").build();
    String m = refused(alice, image);
    assertTrue(
        m.startsWith(
            "checkpoint 1.1, vhost v1-0 would run processes with other credentials than its "
                + "owner's: process 2 (sleep, /usr/bin/sleep) runs as uid 65534 gid 65534 groups "
                + "none, no capabilities; process 3 (threads, "
                + threads
                + ") runs as uid 65534"),
        m);
    assertTrue(m.contains("; its owner alice (1234:1234) runs as uid 1234 gid 1234 groups 27"), m);
  }

  @Test
  void aProcessMadeRootIsRefused() throws IOException {
    Path img = copy("uid0");
    // pid 3: the three-thread program (sh, pid 2, started it, then became sleep)
    editCreds(img, 3, c -> c.setUid(0).setEuid(0).setSuid(0).setFsuid(0));
    String m = refused(NOBODY, img);
    assertTrue(m.contains("process 3 (threads, " + threads + ") runs as uid 0 gid 65534"), m);
    assertTrue(m.contains("its owner nobody (65534:65534) runs as uid 65534 gid 65534"), m);
  }

  @Test
  void oneThreadMadeRootIsRefused() throws IOException {
    Path img = copy("thread-euid0");
    int tid = otherThread(img);
    editCreds(img, tid, c -> c.setEuid(0));
    assertTrue(
        refused(NOBODY, img).contains("process 3 thread " + tid + " (threads, " + threads + ")"));
  }

  @Test
  void capabilitiesAGroupOrAnotherGidAreRefused() throws IOException {
    Path caps = copy("caps");
    editCreds(caps, 2, c -> c.clearCapPrm().addCapPrm(1 << 13).addCapPrm(0));
    assertTrue(refused(NOBODY, caps).contains("capabilities permitted=0x2000 effective=0x0"));
    Path group = copy("group");
    editCreds(group, 2, c -> c.addGroups(0));
    assertTrue(refused(NOBODY, group).contains("groups 0, no capabilities"));
    Path gid = copy("gid");
    editCreds(gid, 2, c -> c.setSgid(0));
    assertTrue(refused(NOBODY, gid).contains("gid 65534/65534/0/65534"));
  }

  @Test
  void aThreadWithoutRecordedCredentialsIsRefused() throws IOException {
    Path img = copy("no-creds");
    CriuImageWriter.edit(
        img.resolve("core-2.img"),
        CriuImageFile.CORE_MAGIC,
        CoreEntry.parser(),
        c -> {
          CoreEntry.Builder b = c.toBuilder();
          b.getThreadCoreBuilder().clearCreds();
          return b.build();
        });
    assertTrue(
        refused(NOBODY, img)
            .contains("process 2 (sleep, /usr/bin/sleep) has no credentials recorded"));
  }

  @Test
  void rootIsAllowedOnlyToTheInitBinaryAsPid1() throws IOException {
    // pid 1 said to run sleep's executable: a root process that is not Cohort's init.
    Path img = copy("init-exe");
    int sleepExe =
        CriuImageFile.readFirst(img.resolve("mm-2.img"), CriuImageFile.MM_MAGIC, MmEntry.parser())
            .getExeFileId();
    CriuImageWriter.edit(
        img.resolve("mm-1.img"),
        CriuImageFile.MM_MAGIC,
        MmEntry.parser(),
        m -> m.toBuilder().setExeFileId(sleepExe).build());
    assertTrue(
        refused(NOBODY, img)
            .startsWith(
                "checkpoint 1.1, vhost v1-0 would run processes with other credentials than its "
                    + "owner's: process 1 (cohort-init, /usr/bin/sleep) runs as uid 0"));
    // Another init path than the manifest's.
    assertTrue(refused(NOBODY, image, "/usr/lib/other-init").contains("process 1 (cohort-init"));
  }

  @Test
  void aDamagedImageIsRefusedAsDataLoss() throws IOException {
    Path missing = copy("missing-core");
    Files.delete(missing.resolve("core-2.img"));
    CohortException e =
        assertThrows(
            CohortException.class, () -> ImageCredentials.check(NOBODY, missing, INIT, "x"));
    assertEquals(CohortException.Kind.DATA_LOSS, e.kind());
    assertTrue(e.getMessage().contains("core-2.img: missing"), e.getMessage());
    Path magic = copy("magic");
    byte[] b = Files.readAllBytes(magic.resolve("pstree.img"));
    b[4] ^= 1;
    Files.write(magic.resolve("pstree.img"), b);
    e = assertThrows(CohortException.class, () -> ImageCredentials.check(NOBODY, magic, INIT, "x"));
    assertTrue(e.getMessage().contains("pstree.img: magic 54564319 50273031"), e.getMessage());
  }

  // ------------------------------------------------------------------ helpers

  private static String refused(Owner owner, Path img) {
    return refused(owner, img, INIT);
  }

  private static String refused(Owner owner, Path img, String init) {
    String what = "checkpoint 1.1, vhost v1-0";
    CohortException e =
        assertThrows(CohortException.class, () -> ImageCredentials.check(owner, img, init, what));
    assertEquals(CohortException.Kind.PERMISSION_DENIED, e.kind(), e.getMessage());
    return e.getMessage();
  }

  private static Path copy(String name) throws IOException {
    Path to = Files.createDirectories(work.resolve("edited-" + name));
    try (var files = Files.list(image)) {
      for (Path f : files.filter(f -> f.getFileName().toString().endsWith(".img")).toList()) {
        Files.copy(f, to.resolve(f.getFileName()));
      }
    }
    return to;
  }

  /** One of pid 3's other threads. */
  private static int otherThread(Path img) throws IOException {
    return ImageCredentials.read(img).stream()
        .filter(t -> t.pid() == 3 && t.tid() != 3)
        .findFirst()
        .orElseThrow()
        .tid();
  }

  private static void editCreds(
      Path img, int tid, UnaryOperator<io.cohort.proto.criu.CredsEntry.Builder> change)
      throws IOException {
    CriuImageWriter.edit(
        img.resolve("core-" + tid + ".img"),
        CriuImageFile.CORE_MAGIC,
        CoreEntry.parser(),
        c -> {
          CoreEntry.Builder b = c.toBuilder();
          change.apply(b.getThreadCoreBuilder().getCredsBuilder());
          return b.build();
        });
  }
}
