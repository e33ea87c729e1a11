package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.FileDigest;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.Owner;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image edited on disk by someone without the cluster's checkpoint key: its files changed, their
 * sha256 recomputed in the manifest, and the manifest's own sha256 what the (forged) record says.
 * Every digest then matches; only the manifest's MAC tells, and the image is refused. So is a
 * genuine manifest of another checkpoint moved into this one, and a restore for another owner.
 */
class SignedManifestsTest {
  @TempDir Path dir;

  private static final Owner ALICE =
      Owner.newBuilder().setUid(1001).setGid(1001).setUser("alice").build();

  private ImageStore store() {
    return new LocalImageStore(dir, ".pending", TestKey.KEY);
  }

  /** Seals and publishes an image of {@code ckpt}/{@code vhost}; returns its manifest's sha256. */
  private static String sealed(ImageStore store, String ckpt, String vhost) throws Exception {
    Path pending = store.createPending(ckpt, vhost);
    Files.writeString(pending.resolve("criu/core-1.img"), "uid 1001");
    Files.write(pending.resolve("criu/pages-1.img"), new byte[4096]);
    String sha =
        store
            .seal(
                pending,
                ImageManifest.newBuilder()
                    .setCheckpointId(ckpt)
                    .setJobId(ckpt.substring(0, ckpt.indexOf('.')))
                    .setVhostId(vhost)
                    .setOwner(ALICE))
            .getValue();
    store.publish(ckpt, vhost);
    return sha;
  }

  private static String sha256(byte[] b) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
  }

  private static String refusal(ImageStore store, String ckpt, String vhost, String sha) {
    CohortException e = assertThrows(CohortException.class, () -> store.verify(ckpt, vhost, sha));
    assertEquals(CohortException.Kind.DATA_LOSS, e.kind());
    return e.getMessage();
  }

  /** {@code to} becomes a copy of {@code from}. */
  private static void replaceTree(Path from, Path to) throws Exception {
    io.cohort.common.DurableFiles.deleteTree(to);
    try (var walk = Files.walk(from)) {
      for (Path p : walk.toList()) {
        Files.copy(p, to.resolve(from.relativize(p).toString()));
      }
    }
  }

  @Test
  void anImageEditedWithEveryDigestRecomputedIsRefused() throws Exception {
    ImageStore store = store();
    sealed(store, "12.7", "12-1");
    Path image = store.committedDir("12.7", "12-1");
    Path core = image.resolve("criu/core-1.img");
    Files.writeString(core, "uid 0000");
    Path manifest = image.resolve(ImageStore.MANIFEST);
    ImageManifest m = ProtoJson.read(manifest, ImageManifest.newBuilder()).build();
    ImageManifest.Builder edited = m.toBuilder().clearFiles();
    for (FileDigest f : m.getFilesList()) {
      byte[] now = Files.readAllBytes(image.resolve("criu").resolve(f.getPath()));
      edited.addFiles(f.toBuilder().setSize(now.length).setSha256(sha256(now)));
    }
    byte[] bytes = ProtoJson.write(manifest, edited.setOwner(Owner.getDefaultInstance()).build());
    String forgedRecordSha = sha256(bytes);

    String why = refusal(store, "12.7", "12-1", forgedRecordSha);
    assertTrue(
        why.contains(
            "checkpoint 12.7: the manifest of vhost 12-1 is not signed by this cluster's "
                + "checkpoint key (edited, or from another cluster)"),
        why);
    assertThrows(CohortException.class, () -> store.publishedManifest("12.7", "12-1"));
  }

  @Test
  void aManifestOfAnotherClusterIsRefused() throws Exception {
    ImageStore ours = store();
    ImageStore theirs = new LocalImageStore(dir, ".pending", CheckpointKey.random());
    String sha = sealed(theirs, "3.1", "3-0");
    assertTrue(refusal(ours, "3.1", "3-0", sha).contains("not signed"));
  }

  @Test
  void aSignedManifestMovedToAnotherCheckpointOrVhostIsRefused() throws Exception {
    ImageStore store = store();
    String theirs = sealed(store, "13.2", "13-0");
    sealed(store, "12.7", "12-1");
    sealed(store, "12.7", "12-0");
    // Another job's whole image, in place of this one's (and a record that names it).
    Path victim = store.committedDir("12.7", "12-1");
    replaceTree(store.committedDir("13.2", "13-0"), victim);
    String why = refusal(store, "12.7", "12-1", theirs);
    assertTrue(why.contains("holds the manifest of vhost 13-0 of checkpoint 13.2 (job 13)"), why);
    // Another vhost's of the same checkpoint.
    byte[] other = Files.readAllBytes(store.committedDir("12.7", "12-0").resolve("manifest.json"));
    replaceTree(store.committedDir("12.7", "12-0"), victim);
    assertTrue(refusal(store, "12.7", "12-1", sha256(other)).contains("of vhost 12-0"));
  }

  @Test
  void aRestoreForAnotherOwnerThanTheDumpedOneIsRefused() throws Exception {
    ImageStore store = store();
    String sha = sealed(store, "12.7", "12-1");
    ImageManifest m = store.verify("12.7", "12-1", sha).manifest();
    SignedManifests.requireOwner(m, ALICE.toBuilder().setUser("").build()); // numbers count
    CohortException e =
        assertThrows(
            CohortException.class,
            () -> SignedManifests.requireOwner(m, Owner.getDefaultInstance()));
    assertEquals(CohortException.Kind.PERMISSION_DENIED, e.kind());
    assertTrue(e.getMessage().contains("taken of a job of alice (1001:1001)"), e.getMessage());
    assertThrows(
        CohortException.class,
        () -> SignedManifests.requireOwner(m, ALICE.toBuilder().addGroups(0).build()));
  }

  /** The manifest's MAC covers what the agent writes as root; its text is only the carrier. */
  @Test
  void reformattingTheManifestKeepsItSignedButNotTheCommittedOne() throws Exception {
    ImageStore store = store();
    String sha = sealed(store, "12.7", "12-1");
    Path manifest = store.committedDir("12.7", "12-1").resolve(ImageStore.MANIFEST);
    String compact = ProtoJson.print(ProtoJson.read(manifest, ImageManifest.newBuilder()).build());
    Files.writeString(manifest, compact, StandardCharsets.UTF_8);
    assertTrue(store.publishedManifest("12.7", "12-1").isPresent(), "still signed");
    assertTrue(refusal(store, "12.7", "12-1", sha).contains("sha256 mismatch"));
  }
}
