package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import io.cohort.common.ProtoJson;
import io.cohort.mpitests.CohortHarness.Result;
import io.cohort.mpitests.UnixAccounts.Account;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.FileDigest;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.Owner;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Checkpoints edited on disk by someone who can write the images and the coordinator's catalog but
 * has not the cluster's checkpoint key. A real user's job is checkpointed with real CRIU; then its
 * image is edited so that its processes would come back as root (uid 0 in CRIU's core images) with
 * every sha256 recomputed in the manifest, and in the checkpoint record too; and its checkpoint
 * record is edited to name another node, or another owner. Each restart is refused before anything
 * is restored, and the job stays stopped. Once the files are as the daemons wrote them, the same
 * restart runs the job on, as its owner. With the images on a node's own disk, and in an image
 * directory the nodes share.
 */
class SignedCheckpointsIT {
  /** Each line says which user printed it: `id` runs with the credentials of the job's shell. */
  private static final String TICKER =
      "i=0; while [ $i -lt 3000 ]; do echo tick $i $(id -u); i=$((i+1)); sleep 0.2; done";

  /** CRIU's image files start with it (criu/include/magic.h), then the image's own magic. */
  private static final int IMG_COMMON_MAGIC = 0x54564319;

  private static UnixAccounts accounts;
  private static Account alice;
  private static Path cli;

  @BeforeAll
  static void up() throws Exception {
    accounts = new UnixAccounts();
    try {
      alice = accounts.create("s");
      cli = accounts.cli();
    } catch (Exception | AssertionError e) {
      down();
      throw e;
    }
  }

  @AfterAll
  static void down() throws Exception {
    accounts.close(); // its copies of the CLI too
  }

  @Test
  void editedImagesAndRecordsOnANodesOwnDiskAreRefused() throws Exception {
    tamperAndRestart("cohortsl", "198.18.91", false);
  }

  @Test
  void editedImagesAndRecordsInASharedImageDirectoryAreRefused() throws Exception {
    tamperAndRestart("cohortss", "198.18.92", true);
  }

  private static void tamperAndRestart(String prefix, String subnet, boolean shared)
      throws Exception {
    CohortHarness cohort = new CohortHarness("signed-" + prefix);
    try {
      cohort.clusterUp(2, prefix, subnet, shared ? "--shared-images" : "--image-policy=none");
      String job =
          as(cohort, "run", "--detach", "--json", "--nodes", "n1", "--", "sh", "-c", TICKER)
              .ok()
              .json()
              .get("job")
              .getAsString();
      Path log = cohort.clusterLog("n1", job);
      CohortHarness.awaitFile(log, "tick 5 " + alice.uid(), Duration.ofSeconds(90));
      String ckpt = as(cohort, "checkpoint", "--stop", job).ok().out().strip();
      assertEquals(job + ".1", ckpt);
      String vhost = job + "-0";
      Path image =
          cohort.home.resolve(
              (shared ? "cluster/shared-images/" : "cluster/nodes/n1/images/")
                  + ckpt
                  + "/"
                  + vhost);
      Path record = cohort.home.resolve("cluster/coordinator/checkpoints/" + ckpt + ".json");
      assertTrue(Files.isRegularFile(image.resolve("manifest.json")), image + " has the image");
      Map<Path, byte[]> genuine = backup(image, record);
      int ticks = lines(log);

      // The image: its processes made root, every file's sha256 recomputed in the manifest.
      byte[] manifest = asAttacker(image);
      refused(cohort, job, ckpt, "the manifest of vhost " + vhost + " is not signed");
      // The same, and the record names the edited manifest's sha256.
      editRecord(record, c -> c.toBuilder().putManifestSha256(vhost, sha256(manifest)).build());
      refused(cohort, job, ckpt, "its record is not signed");
      restore(genuine);

      // The record alone: its vhost on another node, or the checkpoint root's.
      editRecord(
          record,
          c -> c.toBuilder().setVhosts(0, c.getVhosts(0).toBuilder().setNode("n2")).build());
      refused(cohort, job, ckpt, "its record is not signed");
      restore(genuine);
      editRecord(record, c -> c.toBuilder().setOwner(Owner.getDefaultInstance()).build());
      refused(cohort, job, ckpt, "its record is not signed");
      restore(genuine);

      // As the daemons wrote it: the job runs on, as its owner.
      as(cohort, "restart", "--detach", ckpt).ok();
      assertEquals("JOB_STATE_RUNNING", cohort.state(job));
      CohortHarness.awaitFile(
          log, "tick " + (ticks + 5) + " " + alice.uid() + "\n", Duration.ofSeconds(90));
      for (String line : Files.readAllLines(log)) {
        assertTrue(line.endsWith(" " + alice.uid()), "a line of the job as another user: " + line);
      }
      cohort.cohort("kill", job).ok();
    } finally {
      cohort.closeCluster();
    }
  }

  private static Result as(CohortHarness cohort, String... args) {
    return UnixAccounts.cohortAs(alice, cli, cohort.home, args);
  }

  /** The restart is refused, saying why, and the job is as the checkpoint left it: stopped. */
  private static void refused(CohortHarness cohort, String job, String ckpt, String why) {
    Result r = as(cohort, "restart", "--detach", ckpt);
    assertNotEquals(0, r.rc(), "a restart from an edited checkpoint succeeded: " + r.out());
    assertTrue(r.err().contains("checkpoint " + ckpt), r.err());
    assertTrue(r.err().contains(why), "expected '" + why + "'; got: " + r.err());
    JsonObject after = cohort.job(job);
    assertEquals("JOB_STATE_STOPPED", after.get("state").getAsString(), after.toString());
    assertEquals(1, after.get("incarnation").getAsInt(), "nothing was restored");
  }

  /**
   * Edits the image as someone without the key would: every process with a uid other than 0 gets
   * uid, gid and their saved and fs twins 0 in its core image, and the manifest gets the new sizes
   * and sha256 of those files (its MAC left as it was). Returns the manifest's new bytes.
   */
  private static byte[] asAttacker(Path image) throws Exception {
    Path criu = image.resolve("criu");
    Path manifest = image.resolve("manifest.json");
    ImageManifest m = ProtoJson.read(manifest, ImageManifest.newBuilder()).build();
    ImageManifest.Builder edited = m.toBuilder().clearFiles();
    int madeRoot = 0;
    for (FileDigest f : m.getFilesList()) {
      Path file = criu.resolve(f.getPath());
      if (f.getPath().startsWith("core-") && makeRoot(file)) {
        madeRoot++;
      }
      byte[] now = Files.readAllBytes(file);
      edited.addFiles(f.toBuilder().setSize(now.length).setSha256(sha256(now)));
    }
    assertTrue(madeRoot > 0, "no process of the job ran as its owner in " + criu);
    return ProtoJson.write(manifest, edited.build());
  }

  /**
   * Sets the ids of the task's credentials in a CRIU core image to 0 (core_entry.thread_core = 5,
   * its creds = 10, uid..fsgid = 1..8; criu/images/core.proto and creds.proto), when they are not 0
   * already and the task is not a zombie; true if it did.
   */
  private static boolean makeRoot(Path core) throws IOException {
    ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(core)).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(IMG_COMMON_MAGIC, in.getInt(), core + " is not a CRIU image");
    int magic = in.getInt();
    byte[] entry = new byte[in.getInt()];
    in.get(entry);
    byte[] rest = new byte[in.remaining()];
    in.get(rest);
    UnknownFieldSet coreEntry = UnknownFieldSet.parseFrom(entry);
    if (coreEntry.getField(5).getLengthDelimitedList().isEmpty()) {
      return false; // a zombie (the ticker's `sleep` just ended): its core has no thread state
    }
    UnknownFieldSet thread = UnknownFieldSet.parseFrom(only(coreEntry, 5));
    UnknownFieldSet creds = UnknownFieldSet.parseFrom(only(thread, 10));
    if (creds.getField(1).getVarintList().equals(List.of(0L))) {
      return false;
    }
    UnknownFieldSet.Builder root = creds.toBuilder();
    for (int id = 1; id <= 8; id++) {
      root.addField(id, UnknownFieldSet.Field.newBuilder().addVarint(0).build());
    }
    byte[] out =
        coreEntry.toBuilder()
            .addField(5, bytes(thread.toBuilder().addField(10, bytes(root.build())).build()))
            .build()
            .toByteArray();
    ByteBuffer head = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
    head.putInt(IMG_COMMON_MAGIC).putInt(magic).putInt(out.length);
    ByteArrayOutputStream file = new ByteArrayOutputStream();
    file.write(head.array());
    file.write(out);
    file.write(rest);
    Files.write(core, file.toByteArray());
    return true;
  }

  private static ByteString only(UnknownFieldSet set, int field) {
    List<ByteString> l = set.getField(field).getLengthDelimitedList();
    assertEquals(1, l.size(), "field " + field + " of a core entry");
    return l.get(0);
  }

  private static UnknownFieldSet.Field bytes(UnknownFieldSet set) {
    return UnknownFieldSet.Field.newBuilder().addLengthDelimited(set.toByteString()).build();
  }

  /** Changes the record's fields, keeping its MAC. */
  private static void editRecord(Path record, UnaryOperator<CheckpointInfo> change) {
    ProtoJson.write(
        record, change.apply(ProtoJson.read(record, CheckpointInfo.newBuilder()).build()));
  }

  /** The files an attacker edits here, as they are now. */
  private static Map<Path, byte[]> backup(Path image, Path record) throws IOException {
    Map<Path, byte[]> files = new HashMap<>();
    files.put(record, Files.readAllBytes(record));
    files.put(image.resolve("manifest.json"), Files.readAllBytes(image.resolve("manifest.json")));
    try (Stream<Path> criu = Files.list(image.resolve("criu"))) {
      for (Path f : criu.filter(p -> p.getFileName().toString().startsWith("core-")).toList()) {
        files.put(f, Files.readAllBytes(f));
      }
    }
    return files;
  }

  private static void restore(Map<Path, byte[]> files) throws IOException {
    for (Map.Entry<Path, byte[]> f : files.entrySet()) {
      Files.write(f.getKey(), f.getValue());
    }
  }

  private static int lines(Path log) throws IOException {
    return Files.readAllLines(log).size();
  }

  private static String sha256(byte[] b) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
