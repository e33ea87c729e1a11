package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.ImageManifest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sealing, publishing and verifying images, on plain files standing in for CRIU's output. */
class ImageStoreTest {
  @TempDir Path dir;

  private String sealedAndPublished(ImageStore store) throws Exception {
    Path pending = store.createPending("4.2", "4-0");
    Files.write(pending.resolve("criu/pages-1.img"), new byte[100_000]);
    Files.writeString(pending.resolve("criu/core-1.img"), "core");
    Map.Entry<ImageManifest, String> sealed =
        store.seal(
            pending,
            ImageManifest.newBuilder().setCheckpointId("4.2").setJobId("4").setVhostId("4-0"));
    assertEquals(2, sealed.getKey().getFilesCount());
    store.publish("4.2", "4-0");
    assertFalse(Files.exists(store.pendingDir("4.2", "4-0")));
    return sealed.getValue();
  }

  private static CohortException.Kind verifyFails(ImageStore store, String sha) {
    return assertThrows(CohortException.class, () -> store.verify("4.2", "4-0", sha)).kind();
  }

  /**
   * Each vhost's dump creates its directory inside the checkpoint's, while a sweep, an abort or a
   * publish of another vhost removes the checkpoint's directory once empty: a dump must never fail
   * because the two met (it did, under load, once the sweep ran at every heartbeat).
   */
  @Test
  void aDumpStartingWhileTheCheckpointsDirectoryIsRemovedStillGetsItsImageDirectory()
      throws Exception {
    LocalImageStore store = new LocalImageStore(dir, ".pending", TestKey.KEY);
    java.util.concurrent.atomic.AtomicBoolean done =
        new java.util.concurrent.atomic.AtomicBoolean();
    Thread sweeper =
        new Thread(
            () -> {
              while (!done.get()) {
                store.removeAbandonedPending(); // removes "5.1" whenever it is empty
              }
            });
    sweeper.start();
    try {
      for (int i = 0; i < 1000; i++) {
        store.createPending("5.1", "5-0");
        store.discard("5.1", "5-0");
      }
    } finally {
      done.set(true);
      sweeper.join();
    }
  }

  @Test
  void aSealedImageVerifies() throws Exception {
    ImageStore store = new LocalImageStore(dir, ".pending", TestKey.KEY);
    String sha = sealedAndPublished(store);
    ImageStore.Image image = store.verify("4.2", "4-0", sha);
    assertEquals("4.2", image.manifest().getCheckpointId());
    // CRIU writes stats-restore into the image at each restore: not a tampering.
    Files.writeString(image.criuDir().resolve("stats-restore"), "x");
    store.verify("4.2", "4-0", sha);
  }

  /** What ListImages serves for the coordinator's sweep: published images only, with sizes. */
  @Test
  void onlyPublishedImagesAreListedWithTheirSize() throws Exception {
    ImageStore store = new LocalImageStore(dir, ".pending", TestKey.KEY);
    store.createPending("4.3", "4-0"); // a dump in progress: not the sweep's
    sealedAndPublished(store);
    assertEquals(java.util.List.of("4.2/4-0"), store.list());
    assertEquals(100_004, store.bytes("4.2", "4-0"));
    store.delete("4.2", "4-0");
    assertEquals(java.util.List.of(), store.list());
    assertEquals(0, store.bytes("4.2", "4-0"));
  }

  @Test
  void anyChangeToTheImageIsDataLoss() throws Exception {
    ImageStore store = new LocalImageStore(dir, ".pending", TestKey.KEY);
    String sha = sealedAndPublished(store);
    Path criu = store.committedDir("4.2", "4-0").resolve("criu");

    byte[] pages = Files.readAllBytes(criu.resolve("pages-1.img"));
    pages[50_000] ^= 1;
    Files.write(criu.resolve("pages-1.img"), pages);
    assertEquals(CohortException.Kind.DATA_LOSS, verifyFails(store, sha));
    pages[50_000] ^= 1;
    Files.write(criu.resolve("pages-1.img"), pages);
    store.verify("4.2", "4-0", sha);

    Files.writeString(criu.resolve("extra.img"), "x");
    assertEquals(CohortException.Kind.DATA_LOSS, verifyFails(store, sha));
    Files.delete(criu.resolve("extra.img"));

    assertEquals(CohortException.Kind.DATA_LOSS, verifyFails(store, "0".repeat(64)));

    Files.delete(criu.resolve("core-1.img"));
    assertEquals(CohortException.Kind.DATA_LOSS, verifyFails(store, sha));
  }

  @Test
  void aMissingManifestOrImageIsDataLoss() throws Exception {
    ImageStore store = new LocalImageStore(dir, ".pending", TestKey.KEY);
    String sha = sealedAndPublished(store);
    Files.delete(store.committedDir("4.2", "4-0").resolve("manifest.json"));
    CohortException e = assertThrows(CohortException.class, () -> store.verify("4.2", "4-0", sha));
    assertTrue(e.getMessage().contains("manifest"), e.getMessage());
    assertEquals(
        CohortException.Kind.DATA_LOSS,
        assertThrows(CohortException.class, () -> store.verify("9.9", "9-0", "")).kind());
  }

  @Test
  void pendingImagesOfDeadOwnersAreRemovedOthersKept() throws Exception {
    ImageStore store = new LocalImageStore(dir, ".pending", TestKey.KEY);
    Path mine = store.createPending("5.1", "5-0");
    Path orphan = store.createPending("6.1", "6-0");
    Files.writeString(orphan.resolve("owner"), "999999999 1\n");
    store.removeAbandonedPending();
    assertTrue(Files.exists(mine));
    assertFalse(Files.exists(orphan));
  }
}
