package io.cohort.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.FileDigest;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.Owner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointKeyTest {
  @TempDir Path dir;

  private static final Owner ALICE =
      Owner.newBuilder().setUid(1001).setGid(1001).addGroups(27).setUser("alice").build();

  private static ImageManifest manifest() {
    return ImageManifest.newBuilder()
        .setCheckpointId("12.7")
        .setJobId("12")
        .setVhostId("12-1")
        .setOwner(ALICE)
        .addFiles(FileDigest.newBuilder().setPath("core-1.img").setSize(4).setSha256("ab"))
        .build();
  }

  @Test
  void aSignedMessageVerifiesAndAnyEditOrAnotherKeyDoesNot() {
    CheckpointKey key = CheckpointKey.random();
    ImageManifest signed = key.sign(manifest());
    assertEquals(64, signed.getHmacSha256().length());
    assertTrue(key.signed(signed));
    assertFalse(key.signed(manifest()), "unsigned");
    assertFalse(CheckpointKey.random().signed(signed), "another cluster's key");
    // What someone without the key can do: change a field, or a digest, and keep the MAC.
    assertFalse(key.signed(signed.toBuilder().setOwner(ALICE.toBuilder().setUid(0)).build()));
    assertFalse(
        key.signed(
            signed.toBuilder()
                .setFiles(0, signed.getFiles(0).toBuilder().setSha256("cd"))
                .build()));
    assertFalse(key.signed(signed.toBuilder().setVhostId("12-2").build()));
  }

  @Test
  void theMacSurvivesTheJsonRoundTripWhateverTheOrderOfMapEntries() {
    CheckpointKey key = CheckpointKey.random();
    CheckpointInfo a =
        key.sign(
            CheckpointInfo.newBuilder()
                .setCheckpointId("3.1")
                .putManifestSha256("3-0", "aa")
                .putManifestSha256("3-1", "bb")
                .putImageStore("3-1", "s1")
                .putImageStore("3-0", "s0")
                .build());
    CheckpointInfo read =
        ProtoJson.parse(ProtoJson.pretty(a), CheckpointInfo.newBuilder(), "test").build();
    assertTrue(key.signed(read));
    CheckpointInfo reordered =
        CheckpointInfo.newBuilder()
            .setCheckpointId("3.1")
            .putManifestSha256("3-1", "bb")
            .putManifestSha256("3-0", "aa")
            .putImageStore("3-0", "s0")
            .putImageStore("3-1", "s1")
            .setHmacSha256(a.getHmacSha256())
            .build();
    assertTrue(key.signed(reordered));
  }

  @Test
  void aRecordsMacNeverPassesForAnotherTypesMac() {
    CheckpointKey key = CheckpointKey.random();
    // Both empty but for the MAC: the same encoding, only the type name differs.
    String recordMac = key.sign(CheckpointInfo.getDefaultInstance()).getHmacSha256();
    assertNotEquals(recordMac, key.sign(ImageManifest.getDefaultInstance()).getHmacSha256());
  }

  @Test
  void aKeyIsMadeOnceRootOnlyAndNeverReplaced() throws Exception {
    Path file = dir.resolve("tls").resolve(CheckpointKey.FILE);
    assertTrue(CheckpointKey.create(file));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
    byte[] made = Files.readAllBytes(file);
    assertEquals(CheckpointKey.BYTES, made.length);
    assertFalse(CheckpointKey.create(file), "kept");
    assertEquals(
        new String(made, "ISO-8859-1"), new String(Files.readAllBytes(file), "ISO-8859-1"));
    ImageManifest m = CheckpointKey.load(file).sign(manifest());
    assertTrue(CheckpointKey.loadOrCreate(file).signed(m), "the same key, read again");
    try (var s = Files.list(file.getParent())) {
      assertEquals(1, s.count(), "no temporary file left");
    }
  }

  @Test
  void aMissingShortOrOpenKeyIsRefusedSayingWhatToDo() throws Exception {
    Path file = dir.resolve(CheckpointKey.FILE);
    CohortException missing = assertThrows(CohortException.class, () -> CheckpointKey.load(file));
    assertEquals(CohortException.Kind.FAILED_PRECONDITION, missing.kind());
    assertTrue(missing.getMessage().contains("cohort ca key"), missing.getMessage());
    Files.write(file, new byte[16]);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
    assertTrue(
        assertThrows(CohortException.class, () -> CheckpointKey.load(file))
            .getMessage()
            .contains("16 bytes"));
    Files.write(file, new byte[32]);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
    assertTrue(
        assertThrows(CohortException.class, () -> CheckpointKey.load(file))
            .getMessage()
            .contains("chmod 600"));
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw--w----"));
    assertThrows(CohortException.class, () -> CheckpointKey.load(file));
  }
}
