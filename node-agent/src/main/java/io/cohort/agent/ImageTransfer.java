package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.Ids;
import io.cohort.proto.v1.ExportImageRequest;
import io.cohort.proto.v1.ImageChunk;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.ImportImageResponse;
import io.cohort.proto.v1.JobFile;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Images between nodes: one agent streams a committed image (manifest, CRIU files, the job's logs
 * up to the dump), another fetches it, verifies every sha256 against the committed manifest, and
 * keeps it with the logs inside it (a restore from it puts them in place, see {@link JobFiles}).
 */
final class ImageTransfer {
  private static final Logger log = LoggerFactory.getLogger(ImageTransfer.class);

  private final AgentConfig config;
  private final ImageStore images;
  private final Function<String, ManagedChannel> dial;
  private final Path initPath;
  private final String who;
  private final java.util.concurrent.ConcurrentHashMap<String, Object> importing =
      new java.util.concurrent.ConcurrentHashMap<>();

  ImageTransfer(
      AgentConfig config, ImageStore images, Function<String, ManagedChannel> dial, Path initPath) {
    this.config = config;
    this.images = images;
    this.dial = dial;
    this.initPath = initPath;
    this.who = "agent " + config.node();
  }

  /** Streams a committed image: manifest, CRIU files, and the job's files up to the dump. */
  void export(String ckpt, String vhostId, Consumer<ImageChunk> sink, BooleanSupplier cancelled) {
    Path dir = images.committedDir(Ids.requireCheckpoint(ckpt), Ids.requireVhost(vhostId));
    // Signed, or nothing is read: the files sent are those the manifest names, from its paths.
    ImageManifest m =
        images
            .publishedManifest(ckpt, vhostId)
            .orElseThrow(
                () ->
                    CohortException.notFound(
                        "node %s has no image of vhost %s for checkpoint %s",
                        config.node(), vhostId, ckpt));
    send(dir.resolve(ImageStore.MANIFEST), ImageStore.MANIFEST, Long.MAX_VALUE, sink, cancelled);
    for (var file : m.getFilesList()) {
      send(
          dir.resolve(ImageStore.CRIU_DIR).resolve(file.getPath()),
          ImageStore.CRIU_DIR + "/" + file.getPath(),
          Long.MAX_VALUE,
          sink,
          cancelled);
    }
    // The logs up to their size at the checkpoint: from this image if it is itself a copy (the
    // paths here may hold another incarnation's), else from their paths. (The stdin is in the
    // image itself.)
    for (JobFile f : JobFiles.logs(m)) {
      Path from = JobFiles.carried(dir, f).orElse(Path.of(f.getPath()));
      send(from, wireName(f), f.getSize(), sink, cancelled);
    }
  }

  /** The output log's name in an image stream; the other logs are under {@link #JOB_DIR}. */
  private static final String OUTPUT_LOG = "output.log";

  private static final String JOB_DIR = JobFiles.LOGS_IN_IMAGE + "/";

  private static String wireName(JobFile log) {
    return log.getName().equals(JobFiles.STDOUT) ? OUTPUT_LOG : JOB_DIR + log.getName();
  }

  private static void send(
      Path file, String name, long limit, Consumer<ImageChunk> sink, BooleanSupplier cancelled) {
    byte[] buf = new byte[1 << 20];
    long offset = 0;
    try (InputStream in = Files.newInputStream(file)) {
      sink.accept(ImageChunk.newBuilder().setPath(name).setOffset(0).build()); // even if empty
      while (offset < limit && !cancelled.getAsBoolean()) {
        int n = in.read(buf, 0, (int) Math.min(buf.length, limit - offset));
        if (n <= 0) {
          break;
        }
        sink.accept(
            ImageChunk.newBuilder()
                .setPath(name)
                .setOffset(offset)
                .setData(com.google.protobuf.ByteString.copyFrom(buf, 0, n))
                .build());
        offset += n;
      }
    } catch (IOException e) {
      throw DurableFiles.failure("cannot send " + file, e);
    }
  }

  /**
   * Fetches an image from the agent at {@code source}, verifies it and stores it here with the
   * job's logs (up to the dump) inside it; also puts the vhost init binary where the restored pid 1
   * maps it. Nothing is kept if the transfer or the verification fails.
   */
  ImportImageResponse importImage(ImportImageRequest req) {
    String ckpt = Ids.requireCheckpoint(req.getCheckpointId());
    String vhost = Ids.requireVhost(req.getVhostId());
    if (req.getMaxBytesPerSecond() < 0) {
      throw CohortException.invalid(
          "max_bytes_per_second must be 0 (no limit) or more, got %d", req.getMaxBytesPerSecond());
    }
    // One import of an image at a time (a partner copy and a restart may ask for the same one):
    // they share the pending directory, and the second finds the image published by the first.
    // (A lock per image imported in the agent's life: a few bytes each, never removed, so that
    // no two threads ever hold different locks for one image.)
    synchronized (importing.computeIfAbsent(ckpt + "/" + vhost, k -> new Object())) {
      return importOnce(req, ckpt, vhost);
    }
  }

  private ImportImageResponse importOnce(ImportImageRequest req, String ckpt, String vhost) {
    long t0 = System.nanoTime();
    try {
      images.verify(ckpt, vhost, req.getManifestSha256());
      return ImportImageResponse.newBuilder().build(); // already here (or on shared storage)
    } catch (CohortException notHere) {
      // fetch it
    }
    if (dial == null) {
      throw CohortException.precondition("this agent cannot fetch images from other nodes");
    }
    Path pending = images.pendingDir(ckpt, vhost);
    DurableFiles.deleteTree(pending);
    long bytes = 0;
    // Paced as it is read: once this side waits, gRPC's flow control holds the sender back.
    Pacer pacer = Pacer.of(req.getMaxBytesPerSecond());
    ManagedChannel ch = dial.apply(req.getSourceAddress());
    try {
      LocalImageStore.createPrivate(pending); // root's only, as a dump's (see there)
      Files.createDirectories(pending.resolve(ImageStore.CRIU_DIR));
      Files.createDirectories(pending.resolve(JOB_DIR));
      var it =
          io.cohort.proto.v1.AgentGrpc.newBlockingStub(ch)
              .withDeadlineAfter(
                  config.criuTimeout().toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)
              .exportImage(
                  ExportImageRequest.newBuilder().setCheckpointId(ckpt).setVhostId(vhost).build());
      while (it.hasNext()) {
        ImageChunk c = it.next();
        String name = c.getPath();
        if (!name.equals(ImageStore.MANIFEST)
            && !name.equals(OUTPUT_LOG)
            && !(name.startsWith(JOB_DIR)
                && List.of(JobFiles.STDERR, JobFiles.ORDER)
                    .contains(name.substring(JOB_DIR.length())))
            && !(name.startsWith(ImageStore.CRIU_DIR + "/")
                && !name.substring(5).contains("/")
                && !name.contains(".."))) {
          throw CohortException.dataLoss(
              "image of %s from %s has an unexpected file '%s'",
              ckpt, req.getSourceAddress(), name);
        }
        // Every log is kept under job/ in the copy, the output log too (see JobFiles).
        Path f = pending.resolve(name.equals(OUTPUT_LOG) ? JOB_DIR + JobFiles.STDOUT : name);
        try (var out =
            java.nio.channels.FileChannel.open(
                f, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
          out.write(c.getData().asReadOnlyByteBuffer(), c.getOffset());
        }
        bytes += c.getData().size();
        pacer.paid(c.getData().size());
      }
      ImageManifest m = images.verifyDir(pending, ckpt, vhost, req.getManifestSha256()).manifest();
      // The job's logs stay in the copy: only a restore from it puts them at their paths, once
      // the vhost there is gone. Written there now, they could land under a later incarnation of
      // the job restored meanwhile at those paths, which would then write on after them.
      JobFiles.checkReceived(pending, m, req.getSourceAddress());
      placeInit(m);
      // On disk before it is published: a partner copy is counted on once this returns.
      for (var file : m.getFilesList()) {
        DurableFiles.fsync(pending.resolve(ImageStore.CRIU_DIR).resolve(file.getPath()));
      }
      for (JobFile f : JobFiles.logs(m)) {
        DurableFiles.fsync(JobFiles.inImage(pending, f));
      }
      DurableFiles.fsyncDirectory(pending.resolve(JOB_DIR));
      DurableFiles.fsync(pending.resolve(ImageStore.MANIFEST));
      DurableFiles.fsyncDirectory(pending.resolve(ImageStore.CRIU_DIR));
      DurableFiles.fsyncDirectory(pending);
      images.publish(ckpt, vhost);
    } catch (io.grpc.StatusRuntimeException e) {
      DurableFiles.deleteTree(pending);
      throw io.cohort.common.GrpcErrors.fromStatus(e, "agent at " + req.getSourceAddress());
    } catch (IOException e) {
      DurableFiles.deleteTree(pending);
      throw DurableFiles.failure("cannot import checkpoint " + ckpt, e);
    } catch (InterruptedException e) {
      DurableFiles.deleteTree(pending);
      Thread.currentThread().interrupt();
      throw CohortException.internal("interrupted while importing checkpoint " + ckpt, e);
    } catch (RuntimeException e) {
      DurableFiles.deleteTree(pending);
      throw e;
    } finally {
      ch.shutdownNow();
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    log.info(
        "{}: imported {}/{} from {}: {} MB in {} ms{}",
        who,
        ckpt,
        vhost,
        req.getSourceAddress(),
        bytes >> 20,
        ms,
        req.getMaxBytesPerSecond() > 0
            ? " (at most " + (req.getMaxBytesPerSecond() >> 20) + " MB/s)"
            : "");
    return ImportImageResponse.newBuilder().setBytes(bytes).setMillis(ms).build();
  }

  /** The restored pid 1 maps the very init binary it ran: put ours there if it is the same. */
  private void placeInit(ImageManifest m) throws IOException {
    if (m.getInitPath().isEmpty() || Files.exists(Path.of(m.getInitPath()))) {
      return;
    }
    Path want = Path.of(m.getInitPath());
    if (!want.getFileName().equals(initPath.getFileName())) {
      throw CohortException.precondition(
          "checkpoint %s was taken with another build of "
              + "cohort-init (%s) than this node's (%s); restore it on a node with that build",
          m.getCheckpointId(), want.getFileName(), initPath.getFileName());
    }
    Files.createDirectories(want.getParent());
    Files.copy(initPath, want);
    want.toFile().setExecutable(true, false);
  }
}
