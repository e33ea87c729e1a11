package io.cohort.agent;

import io.cohort.proto.v1.ImageManifest;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * Where a node keeps its checkpoint images, from the dump to the restore. {@link LocalImageStore}
 * keeps them in a directory (node-local or shared); compression or another store is a change behind
 * this interface.
 *
 * <p>An image's life: {@link #createPending} (CRIU writes into it) → {@link #seal} (digested,
 * synced, manifest written) → {@link #publish} (one atomic rename to its committed place, before
 * the coordinator writes the checkpoint record, so the record only ever names images that are
 * durable; done at the end of the seal) → {@link #verify} at a restore. An epoch that aborts {@link
 * #discard}s its images wherever they got to; images that no record names (a coordinator that died
 * between the seal and the record, or an agent it could not reach at the abort) are listed by
 * {@link #list} so that the coordinator can sweep them (ListImages, then DeleteImage).
 */
interface ImageStore {
  String MANIFEST = "manifest.json";
  String CRIU_DIR = "criu";

  /** A verified image ready to restore. */
  record Image(Path dir, ImageManifest manifest) {
    Path criuDir() {
      return dir.resolve(CRIU_DIR);
    }
  }

  /**
   * The store's identity, created by the first agent that uses the directory. Two agents that
   * report the same identity see the same images.
   */
  String id();

  /** Bytes free in the file system of the store. */
  long freeBytes();

  /** Creates a fresh pending directory for a dump, owned by this agent process. */
  Path createPending(String ckpt, String vhost);

  Path pendingDir(String ckpt, String vhost);

  Path committedDir(String ckpt, String vhost);

  /**
   * Syncs and digests every CRIU file of a pending image, writes the manifest durably and returns
   * it with the sha256 of its bytes.
   */
  Map.Entry<ImageManifest, String> seal(Path pending, ImageManifest.Builder manifest);

  /** Moves a sealed image to its committed place (one atomic rename). */
  void publish(String ckpt, String vhost);

  /** Forgets an image that will not be committed, wherever it got to. */
  void discard(String ckpt, String vhost);

  /** Deletes a published image (a removed checkpoint's, or an orphan the sweep found). */
  void delete(String ckpt, String vhost);

  /**
   * Loads and checks a committed image. A manifest not signed with the cluster's checkpoint key as
   * this image's ({@link SignedManifests}) or not the committed one, or any missing, extra, resized
   * or altered file, is DATA_LOSS with a message naming it.
   */
  Image verify(String ckpt, String vhost, String expectedManifestSha);

  /** {@link #verify} of an image in any directory (e.g. one just imported from another node). */
  Image verifyDir(Path dir, String ckpt, String vhost, String expectedManifestSha);

  /** The published images of the store, as "CKPT/VHOST". */
  java.util.List<String> list();

  /** Bytes of a published image's CRIU files (0 if it is gone). */
  long bytes(String ckpt, String vhost);

  /**
   * Removes pending images left by agent processes that died (a crash mid-dump); returns them as
   * "CKPT/VHOST".
   */
  java.util.List<String> removeAbandonedPending();

  /**
   * The manifest of an image published here, if there is one; DATA_LOSS unless it is signed with
   * the cluster's checkpoint key as that image's ({@link SignedManifests}). Not checked against a
   * commit record: for what the agent does without one (sending the image, a late commit).
   */
  Optional<ImageManifest> publishedManifest(String ckpt, String vhost);
}
