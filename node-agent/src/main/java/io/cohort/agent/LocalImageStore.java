package io.cohort.agent;

import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.FileDigest;
import io.cohort.proto.v1.ImageManifest;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The images of one node. Layout under {@code root}:
 *
 * <pre>
 *   store-id             a random identity: agents sharing the directory report the same
 *   .pending/CKPT/VHOST/   a dump in progress, until its seal publishes it
 *                        (.pending-NODE/ in a directory shared between nodes)
 *   .pending/.removed-*    a dead agent's pending image being removed (swept again at each
 *                        heartbeat: its CRIU may still write into it)
 *       criu/            CRIU's image files
 *       hook/            FIFOs of the post-dump hook
 *       owner            pid and start time of the agent process that owns it
 *       manifest.json    written once the dump is complete and synced
 *   CKPT/VHOST/           a published image: same content, moved here by one atomic rename at
 *                        the end of the seal, before the coordinator's record lists it
 * </pre>
 *
 * An image is trusted only if its manifest is signed with the cluster's checkpoint key as this
 * checkpoint's and vhost's ({@link SignedManifests}), its sha256 is the one in the coordinator's
 * commit record, and every file matches the manifest's size and sha256.
 */
final class LocalImageStore implements ImageStore {
  private static final Logger log = LoggerFactory.getLogger(LocalImageStore.class);

  /** Written by CRIU into the image directory at each restore: not part of the image. */
  private static final String RESTORE_STATS = "stats-restore";

  private final Path root;
  private final String pendingName;
  private static final java.util.Set<java.nio.file.attribute.PosixFilePermission> IMAGE_DIR_MODE =
      java.nio.file.attribute.PosixFilePermissions.fromString("rwx------");

  private final ProcessIdentity owner;
  private final CheckpointKey key;
  private volatile String id;

  /**
   * A store in {@code root} whose pending images are owned by this process, and whose manifests
   * {@code key} signs and verifies.
   */
  LocalImageStore(Path root, String pendingName, CheckpointKey key) {
    this(root, pendingName, ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow(), key);
  }

  /**
   * A store whose pending images are owned by {@code owner}: another agent's images are abandoned
   * (and removed) once their owner is dead.
   */
  LocalImageStore(Path root, String pendingName, ProcessIdentity owner, CheckpointKey key) {
    this.root = root;
    this.pendingName = pendingName;
    this.owner = owner;
    this.key =
        Objects.requireNonNull(
            key, "an image store needs the cluster's checkpoint key (AgentConfig.checkpointKey)");
  }

  /**
   * The store's identity, created by the first agent that uses the directory. Two agents that
   * report the same identity see the same images.
   */
  @Override
  public String id() {
    if (id != null) {
      return id;
    }
    Path f = root.resolve("store-id");
    try {
      if (!Files.exists(f)) {
        Files.createDirectories(root);
        Path tmp = root.resolve("store-id." + ProcessHandle.current().pid() + ".tmp");
        Files.writeString(tmp, java.util.UUID.randomUUID() + "\n");
        DurableFiles.fsync(tmp);
        try {
          Files.createLink(f, tmp); // atomic, and never replaces another agent's
        } catch (java.nio.file.FileAlreadyExistsException raced) {
          // another agent created it first: use theirs
        } finally {
          Files.deleteIfExists(tmp);
        }
      }
      id = Files.readString(f).strip();
      return id;
    } catch (IOException e) {
      throw DurableFiles.failure("cannot read the identity of image store " + root, e);
    }
  }

  /** Creates an image's directory (a dump's, or one fetched from another node): root's only. */
  static void createPrivate(Path dir) throws IOException {
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, IMAGE_DIR_MODE);
  }

  /** Creates a fresh pending directory for a dump, owned by this process. */
  @Override
  public Path createPending(String ckpt, String vhost) {
    Path dir = pendingDir(ckpt, vhost);
    DurableFiles.deleteTree(dir);
    try {
      // Root's only: the image holds the job's memory, and its owner reads it only through the
      // daemons, which check who asks (the owner's uid may even mean someone else on another node
      // a copy lands on). A published image keeps the mode (it is this directory, renamed).
      withParentsRaced(
          () -> {
            createPrivate(dir);
            Files.createDirectories(dir.resolve(CRIU_DIR));
            Files.createDirectories(dir.resolve("hook"));
          });
      PendingImages.writeOwner(dir, owner);
    } catch (IOException e) {
      throw DurableFiles.failure("cannot create image directory " + dir, e);
    }
    return dir;
  }

  @Override
  public Path pendingDir(String ckpt, String vhost) {
    return root.resolve(pendingName).resolve(ckpt).resolve(vhost);
  }

  @Override
  public Path committedDir(String ckpt, String vhost) {
    return root.resolve(ckpt).resolve(vhost);
  }

  /** Threads that wait in fsync while the image's files are digested (I/O, not CPU). */
  private static final java.util.concurrent.ExecutorService SYNCERS =
      java.util.concurrent.Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "image-fsync");
            t.setDaemon(true);
            return t;
          });

  /**
   * Syncs and digests every CRIU file, writes the manifest durably and returns it with the sha256
   * of its bytes. Each file's fsync (disk) runs while it is digested (CPU): the seal takes about
   * the longer of the two, not their sum.
   */
  @Override
  public Map.Entry<ImageManifest, String> seal(Path pending, ImageManifest.Builder manifest) {
    Path criu = pending.resolve(CRIU_DIR);
    List<Path> files;
    try (Stream<Path> s = Files.list(criu)) {
      files = s.sorted().toList();
    } catch (IOException e) {
      throw DurableFiles.failure("cannot seal image " + pending, e);
    }
    // Digest and sync the files in parallel: pages files are large, the rest are many.
    List<FileDigest> digests =
        files.parallelStream()
            .map(
                f -> {
                  java.util.concurrent.CompletableFuture<Void> synced =
                      java.util.concurrent.CompletableFuture.runAsync(
                          () -> {
                            try {
                              DurableFiles.fsync(f);
                            } catch (IOException e) {
                              throw DurableFiles.failure("cannot sync image file " + f, e);
                            }
                          },
                          SYNCERS);
                  FileDigest d = digest(f, criu.relativize(f).toString());
                  try {
                    synced.join();
                  } catch (java.util.concurrent.CompletionException e) {
                    throw e.getCause() instanceof RuntimeException re ? re : e;
                  }
                  return d;
                })
            .toList();
    manifest.addAllFiles(digests);
    try {
      DurableFiles.fsyncDirectory(criu);
    } catch (IOException e) {
      throw DurableFiles.failure("cannot seal image " + pending, e);
    }
    ImageManifest m = key.sign(manifest.build());
    byte[] bytes = ProtoJson.write(pending.resolve(MANIFEST), m);
    return Map.entry(m, sha256(bytes));
  }

  /** Total size of the files in a directory. */
  static long totalBytes(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      return s.mapToLong(p -> p.toFile().length()).sum();
    } catch (IOException e) {
      throw DurableFiles.failure("cannot list " + dir, e);
    }
  }

  /**
   * Moves a sealed image to its final place (one atomic rename), at the end of the seal: before the
   * coordinator writes the record. It is a checkpoint only once the record is written; until then
   * an abort discards it, and if neither comes (the coordinator died) the coordinator's sweep
   * removes it.
   */
  @Override
  public void publish(String ckpt, String vhost) {
    Path from = pendingDir(ckpt, vhost);
    Path to = committedDir(ckpt, vhost);
    try {
      DurableFiles.deleteTree(from.resolve("hook"));
      Files.deleteIfExists(from.resolve("owner"));
      withParentsRaced(
          () -> {
            Files.createDirectories(to.getParent());
            DurableFiles.fsyncDirectory(root);
            DurableFiles.rename(from, to);
          });
      deleteIfEmpty(from.getParent());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot publish image " + ckpt + "/" + vhost, e);
    }
  }

  /** Forgets an image that will not be committed, wherever it got to. */
  @Override
  public void discard(String ckpt, String vhost) {
    Path dir = pendingDir(ckpt, vhost);
    DurableFiles.deleteTree(dir);
    deleteIfEmpty(dir.getParent());
    delete(ckpt, vhost);
  }

  @Override
  public void delete(String ckpt, String vhost) {
    Path dir = committedDir(ckpt, vhost);
    DurableFiles.deleteTree(dir);
    deleteIfEmpty(dir.getParent());
  }

  /**
   * Loads and checks a committed image. Any missing, extra, resized or altered file, or a manifest
   * that is not the committed one, is DATA_LOSS with a message naming the file.
   */
  @Override
  public Image verify(String ckpt, String vhost, String expectedManifestSha) {
    return verifyDir(committedDir(ckpt, vhost), ckpt, vhost, expectedManifestSha);
  }

  /** {@link #verify} of an image in any directory (e.g. one just imported from another node). */
  @Override
  public Image verifyDir(Path dir, String ckpt, String vhost, String expectedManifestSha) {
    if (!Files.isDirectory(dir)) {
      throw CohortException.dataLoss(
          "checkpoint %s has no image for vhost %s on this node (expected %s); it was removed "
              + "or never completed: restart from another checkpoint (`cohort checkpoints`)",
          ckpt, vhost, dir);
    }
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(dir.resolve(MANIFEST));
    } catch (NoSuchFileException e) {
      throw CohortException.dataLoss(
          "checkpoint %s is damaged: the manifest of vhost %s is "
              + "missing (%s); it cannot be trusted, restart from another checkpoint",
          ckpt, vhost, dir.resolve(MANIFEST));
    } catch (IOException e) {
      throw DurableFiles.failure("cannot read manifest of " + ckpt, e);
    }
    // Whose and which it is before whether it is the committed one: a manifest edited with its
    // digests recomputed is named for what it is, whatever the record says.
    ImageManifest m =
        SignedManifests.check(
            key,
            ProtoJson.parse(
                    new String(bytes, java.nio.charset.StandardCharsets.UTF_8),
                    ImageManifest.newBuilder(),
                    "manifest of checkpoint " + ckpt)
                .build(),
            ckpt,
            vhost);
    if (!sha256(bytes).equals(expectedManifestSha)) {
      throw CohortException.dataLoss(
          "checkpoint %s is damaged: the manifest of vhost %s was "
              + "modified after the commit (sha256 mismatch)",
          ckpt, vhost);
    }
    Path criu = dir.resolve(CRIU_DIR);
    Map<String, FileDigest> expected = new TreeMap<>();
    m.getFilesList().forEach(f -> expected.put(f.getPath(), f));
    try (Stream<Path> files = Files.list(criu)) {
      for (Path f : files.toList()) {
        String name = criu.relativize(f).toString();
        if (!expected.containsKey(name) && !name.equals(RESTORE_STATS)) {
          throw CohortException.dataLoss(
              "checkpoint %s is damaged: unexpected file %s in the " + "image of vhost %s",
              ckpt, name, vhost);
        }
      }
    } catch (NoSuchFileException e) {
      throw CohortException.dataLoss(
          "checkpoint %s is damaged: the image directory %s of vhost " + "%s is missing",
          ckpt, criu, vhost);
    } catch (IOException e) {
      throw DurableFiles.failure("cannot list image " + criu, e);
    }
    for (FileDigest want : expected.values()) {
      Path f = criu.resolve(want.getPath()).normalize();
      if (!f.startsWith(criu) || !Files.isRegularFile(f)) {
        throw CohortException.dataLoss(
            "checkpoint %s is damaged: image file %s of vhost %s is " + "missing",
            ckpt, want.getPath(), vhost);
      }
      FileDigest got = digest(f, want.getPath());
      if (got.getSize() != want.getSize() || !got.getSha256().equals(want.getSha256())) {
        throw CohortException.dataLoss(
            "checkpoint %s is damaged: image file %s of vhost %s "
                + "does not match its manifest (size %d, expected %d; sha256 %s, expected %s); "
                + "it cannot be restored, restart from another checkpoint",
            ckpt,
            want.getPath(),
            vhost,
            got.getSize(),
            want.getSize(),
            abbrev(got.getSha256()),
            abbrev(want.getSha256()));
      }
    }
    return new Image(dir, m);
  }

  @Override
  public Optional<ImageManifest> publishedManifest(String ckpt, String vhost) {
    Path manifest = committedDir(ckpt, vhost).resolve(MANIFEST);
    if (!Files.exists(manifest)) {
      return Optional.empty();
    }
    return Optional.of(
        SignedManifests.check(
            key, ProtoJson.read(manifest, ImageManifest.newBuilder()).build(), ckpt, vhost));
  }

  @Override
  public List<String> list() {
    if (!Files.isDirectory(root)) {
      return List.of();
    }
    List<String> out = new java.util.ArrayList<>();
    try (Stream<Path> ckpts = Files.list(root)) {
      for (Path c : ckpts.filter(Files::isDirectory).sorted().toList()) {
        String name = c.getFileName().toString();
        if (name.startsWith(".")) {
          continue; // pending images
        }
        try (Stream<Path> vhosts = Files.list(c)) {
          vhosts
              .filter(v -> Files.exists(v.resolve(MANIFEST)))
              .sorted()
              .forEach(v -> out.add(name + "/" + v.getFileName()));
        }
      }
    } catch (IOException e) {
      throw DurableFiles.failure("cannot list the image store " + root, e);
    }
    return out;
  }

  @Override
  public long bytes(String ckpt, String vhost) {
    try {
      return totalBytes(committedDir(ckpt, vhost).resolve(CRIU_DIR));
    } catch (CohortException gone) { // deleted meanwhile
      return 0;
    }
  }

  /** Bytes free in the file system of the store. */
  @Override
  public long freeBytes() {
    try {
      Files.createDirectories(root);
      return Files.getFileStore(root).getUsableSpace();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public List<String> removeAbandonedPending() {
    return PendingImages.removeAbandoned(root.resolve(pendingName));
  }

  /**
   * Runs {@code step}, which creates directories in a checkpoint's directory, again when that
   * directory vanished under it: whoever removes the last image of a checkpoint (a sweep, an abort,
   * a publish, another agent on a shared directory) also removes the checkpoint's directory once
   * empty, and may do so between its creation and the step's next file.
   */
  private static void withParentsRaced(DirectoryStep step) throws IOException {
    for (int attempt = 1; ; attempt++) {
      try {
        step.run();
        return;
      } catch (NoSuchFileException e) {
        if (attempt == 5) {
          throw e;
        }
      }
    }
  }

  @FunctionalInterface
  private interface DirectoryStep {
    void run() throws IOException;
  }

  static void deleteIfEmpty(Path dir) {
    try {
      Files.deleteIfExists(dir);
    } catch (IOException notEmpty) {
      // other vhosts' images still live there
    }
  }

  static FileDigest digest(Path f, String name) {
    MessageDigest md = newSha256();
    long size = 0;
    byte[] buf = new byte[1 << 20];
    try (InputStream in = Files.newInputStream(f)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
        size += n;
      }
    } catch (IOException e) {
      throw DurableFiles.failure("cannot read image file " + f, e);
    }
    return FileDigest.newBuilder()
        .setPath(name)
        .setSize(size)
        .setSha256(HexFormat.of().formatHex(md.digest()))
        .build();
  }

  static String sha256(byte[] bytes) {
    return HexFormat.of().formatHex(newSha256().digest(bytes));
  }

  private static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String abbrev(String hex) {
    return hex.length() > 12 ? hex.substring(0, 12) + "…" : hex;
  }
}
