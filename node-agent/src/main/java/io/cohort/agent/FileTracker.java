package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.ProcessRunner;
import io.cohort.proto.v1.TrackedFile;
import io.cohort.proto.v1.TrackedFileKind;
import io.cohort.proto.v1.TrackedFiles;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Captures, at a checkpoint, the regular files a vhost's processes hold open for writing or have
 * mapped writable, so that a restart can return them to their state at the cut (see {@link
 * FileRollback}). Runs once CRIU has frozen the processes (from its network-lock hook), beside
 * CRIU's dump, so nothing writes to the files meanwhile and the capture adds little to the freeze.
 *
 * <p>A file written without read access (fopen "w", an append-only log) is only extended in the
 * common case: its size, identity and the sha256 of its last {@link #TAIL_BYTES} bytes are
 * recorded, which costs the same for a 1 GB file as for a small one. Hashing whole files inside the
 * freeze would cost about a second per 500 MB here, and the tail catches the usual ways such a file
 * is changed (cut and rewritten). A file open for reading and writing, or mapped writable, may be
 * modified anywhere: it is copied into the image (a reflink where the file system supports one).
 *
 * <p>Not tracked: files in the vhost's private /tmp and /dev/shm (their content is in CRIU's
 * image), deleted files (CRIU saves them as ghost files), the agent's own files (the output log has
 * its own rollback), and anything not a regular file.
 */
final class FileTracker {
  /** Bytes before a file's size whose digest is recorded. */
  static final int TAIL_BYTES = 64 * 1024;

  /** Where the tracked files' record goes in a vhost's image (criu directory). */
  static final String IMAGE = "cohort-files.img";

  private static final int O_ACCMODE = 3;
  private static final int O_RDWR = 2;
  private static final List<String> PRIVATE =
      List.of("/tmp/", "/dev/", "/proc/", "/sys/", "/run/cohort");

  /**
   * The agent's own directories (its home and the image store, which may be shared and outside the
   * home): never the job's files. CRIU lends its log's descriptor to the parasite it injects into
   * each process, so a capture running beside the dump can see the pending image's {@code dump.log}
   * open for writing in a job process.
   */
  private final List<Path> agentDirs;

  FileTracker(List<Path> agentDirs) {
    this.agentDirs = List.copyOf(agentDirs);
  }

  /**
   * Records every tracked file of the process tree rooted at {@code initPid} into {@code criuDir}
   * (the record, and the copies of files that may change in place). The processes must be frozen.
   */
  TrackedFiles capture(long initPid, Path criuDir) {
    long t0 = System.nanoTime();
    Map<String, Boolean> open = openForWriting(initPid); // path -> may change in place
    TrackedFiles.Builder out = TrackedFiles.newBuilder();
    long copied = 0;
    int n = 0;
    for (Map.Entry<String, Boolean> e : open.entrySet()) {
      Path file = Path.of(e.getKey());
      try {
        BasicFileAttributes a =
            Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!a.isRegularFile()) {
          continue;
        }
        long[] id = deviceAndInode(file);
        TrackedFile.Builder t =
            TrackedFile.newBuilder()
                .setPath(e.getKey())
                .setSize(a.size())
                .setDevice(id[0])
                .setInode(id[1]);
        if (e.getValue()) {
          String name = "cohort-file-" + n++ + ".copy";
          copy(file, criuDir.resolve(name));
          copied += a.size();
          // No digest here: the seal digests the copy with the image's other files.
          t.setKind(TrackedFileKind.TRACKED_FILE_KIND_COPIED).setCopyName(name);
        } else {
          long tail = Math.min(TAIL_BYTES, a.size());
          t.setKind(TrackedFileKind.TRACKED_FILE_KIND_EXTENDED)
              .setTailBytes(tail)
              .setTailSha256(sha256(file, a.size() - tail, tail));
        }
        out.addFiles(t);
      } catch (IOException gone) {
        // closed and removed since the scan: nothing to bring back
      }
    }
    TrackedFiles tracked =
        out.setBytesCopied(copied).setCaptureMs((System.nanoTime() - t0) / 1_000_000).build();
    try {
      Files.write(criuDir.resolve(IMAGE), tracked.toByteArray());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot record the job's open files", e);
    }
    return tracked;
  }

  /** The files the tree holds open for writing or maps writable: path -> may change in place. */
  private Map<String, Boolean> openForWriting(long initPid) {
    Map<String, Boolean> files = new TreeMap<>();
    for (long pid : tree(initPid)) {
      Path proc = Path.of("/proc", Long.toString(pid));
      try (Stream<Path> fds = Files.list(proc.resolve("fd"))) {
        for (Path fd : fds.toList()) {
          try {
            String target = Files.readSymbolicLink(fd).toString();
            if (!tracked(target)) {
              continue; // sockets, pipes, devices, the vhost's /tmp: most descriptors
            }
            int mode = flags(proc.resolve("fdinfo").resolve(fd.getFileName())) & O_ACCMODE;
            if (mode != 0) {
              files.merge(target, mode == O_RDWR, Boolean::logicalOr);
            }
          } catch (IOException | RuntimeException closed) {
            // the descriptor went away
          }
        }
      } catch (IOException gone) {
        continue; // the process ended
      }
      // "start-end perms offset dev inode   path": shared writable mappings of files. A JVM
      // maps thousands of regions: test the perms before splitting a line.
      try (Stream<String> maps = Files.lines(proc.resolve("maps"))) {
        maps.filter(l -> l.contains(" rw-s "))
            .map(l -> l.trim().split("\\s+", 6))
            .filter(f -> f.length == 6 && tracked(f[5]))
            .forEach(f -> files.put(f[5], true));
      } catch (IOException | java.io.UncheckedIOException gone) {
        // the process ended
      }
    }
    return files;
  }

  /**
   * The pids of the tree rooted at {@code root}, from each task's children list (only the tree is
   * read, not the whole process table).
   */
  private static List<Long> tree(long root) {
    List<Long> pids = new ArrayList<>();
    java.util.ArrayDeque<Long> todo = new java.util.ArrayDeque<>(List.of(root));
    while (!todo.isEmpty()) {
      long pid = todo.pop();
      pids.add(pid);
      try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
        for (Path task : tasks.toList()) {
          String children = Files.readString(task.resolve("children")).trim();
          if (!children.isEmpty()) {
            for (String c : children.split(" ")) {
              todo.push(Long.parseLong(c));
            }
          }
        }
      } catch (IOException | RuntimeException gone) {
        // the process ended
      }
    }
    return pids;
  }

  private boolean tracked(String path) {
    if (!path.startsWith("/") || path.endsWith(" (deleted)")) {
      return false;
    }
    for (String p : PRIVATE) {
      if (path.startsWith(p)) {
        return false;
      }
    }
    Path p = Path.of(path);
    return agentDirs.stream().noneMatch(p::startsWith);
  }

  private static int flags(Path fdinfo) throws IOException {
    for (String line : Files.readAllLines(fdinfo)) {
      if (line.startsWith("flags:")) {
        return Integer.parseInt(line.substring(6).trim(), 8);
      }
    }
    throw new IOException("no flags in " + fdinfo);
  }

  /** [device, inode] of a file (as stat(2) gives them). */
  static long[] deviceAndInode(Path file) throws IOException {
    Object dev = Files.getAttribute(file, "unix:dev", LinkOption.NOFOLLOW_LINKS);
    Object ino = Files.getAttribute(file, "unix:ino", LinkOption.NOFOLLOW_LINKS);
    return new long[] {((Number) dev).longValue(), ((Number) ino).longValue()};
  }

  /** Copies a file, as a reflink where the file system can (then it costs no data copy). */
  private static void copy(Path from, Path to) throws IOException {
    ProcessRunner.Result r =
        ProcessRunner.run(
            Duration.ofMinutes(10),
            Map.of(),
            List.of("cp", "--reflink=auto", "--sparse=always", from.toString(), to.toString()));
    if (!r.ok()) {
      throw new IOException("cp " + from + " failed: " + r.output());
    }
  }

  /** sha256 of {@code length} bytes of a file from {@code offset} (to its end if shorter). */
  static String sha256(Path file, long offset, long length) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    byte[] buf = new byte[1 << 20];
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
      f.seek(offset);
      long left = length;
      for (int n; left > 0 && (n = f.read(buf, 0, (int) Math.min(buf.length, left))) > 0; ) {
        md.update(buf, 0, n);
        left -= n;
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  /** The tracked files recorded in an image's criu directory (none for older images). */
  static TrackedFiles read(Path criuDir) {
    Path f = criuDir.resolve(IMAGE);
    if (!Files.exists(f)) {
      return TrackedFiles.getDefaultInstance();
    }
    try {
      return TrackedFiles.parseFrom(Files.readAllBytes(f));
    } catch (IOException e) {
      throw CohortException.dataLoss("cannot read the job's tracked files in %s: %s", f, e);
    }
  }
}
