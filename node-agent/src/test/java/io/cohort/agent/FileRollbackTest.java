package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.TrackedFile;
import io.cohort.proto.v1.TrackedFileKind;
import io.cohort.proto.v1.TrackedFiles;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The files a process holds open for writing are captured (write-only: size and tail digest;
 * read-write: a copy) and returned to that state, or refused by name when they cannot be.
 */
class FileRollbackTest {
  /** Temporary directories under target/ rather than /tmp. */
  static final class UnderTarget implements org.junit.jupiter.api.io.TempDirFactory {
    @Override
    public Path createTempDirectory(
        org.junit.jupiter.api.extension.AnnotatedElementContext element,
        org.junit.jupiter.api.extension.ExtensionContext context)
        throws java.io.IOException {
      Path base = Files.createDirectories(Path.of("target", "tmp").toAbsolutePath());
      return Files.createTempDirectory(base, "files-");
    }
  }

  /** Not under /tmp: a vhost's /tmp is its own, part of CRIU's image, and never tracked. */
  @TempDir(factory = UnderTarget.class)
  Path dir;

  private Path criu;
  private Path out;
  private Path data;
  private Path readOnly;
  private Process holder;

  @BeforeEach
  void setUp() throws Exception {
    criu = Files.createDirectories(dir.resolve("image/criu"));
    out = dir.resolve("out.txt");
    data = dir.resolve("data.bin");
    readOnly = dir.resolve("input.txt");
    Files.writeString(out, "line 1\nline 2\n");
    Files.write(data, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
    Files.writeString(readOnly, "input\n");
    // A CRIU log in a shared image store, as the parasite CRIU injects holds it during a dump.
    Path criuLog =
        Files.createDirectories(dir.resolve("shared-images/.pending/1.1")).resolve("log");
    // A "job" holding out.txt write-only (append), data.bin read-write, input.txt read-only.
    holder =
        new ProcessBuilder(
                "sh",
                "-c",
                "exec 3>>\"$0\" 4<>\"$1\" 5<\"$2\" 6>\"$3\"; exec sleep 60",
                out.toString(),
                data.toString(),
                readOnly.toString(),
                criuLog.toString())
            .start();
    for (int i = 0; i < 200 && !holds(holder.pid(), 6); i++) {
      Thread.sleep(10);
    }
  }

  private static boolean holds(long pid, int fd) {
    return Files.exists(Path.of("/proc", Long.toString(pid), "fd", Integer.toString(fd)));
  }

  @AfterEach
  void tearDown() throws Exception {
    holder.destroyForcibly().waitFor();
  }

  private TrackedFiles capture() {
    return new FileTracker(List.of(dir.resolve("agent-home"), dir.resolve("shared-images")))
        .capture(holder.pid(), criu);
  }

  @Test
  void writeOnlyFilesAreRecordedByTailAndReadWriteFilesCopied() {
    TrackedFiles t = capture();
    Map<String, TrackedFile> byPath =
        t.getFilesList().stream().collect(Collectors.toMap(TrackedFile::getPath, f -> f));
    assertEquals(
        2,
        byPath.size(),
        "read-only files and the agent's own files are not tracked: " + byPath.keySet());
    assertEquals(TrackedFileKind.TRACKED_FILE_KIND_EXTENDED, byPath.get(out.toString()).getKind());
    assertEquals(14, byPath.get(out.toString()).getSize());
    assertEquals(TrackedFileKind.TRACKED_FILE_KIND_COPIED, byPath.get(data.toString()).getKind());
    assertEquals(8, t.getBytesCopied());
    assertEquals(t, FileTracker.read(criu), "the record is written into the image");
  }

  @Test
  void filesChangedAfterTheCheckpointReturnToItAndWhatWasThereIsKeptAside() throws Exception {
    byte[] outThen = Files.readAllBytes(out);
    byte[] dataThen = Files.readAllBytes(data);
    TrackedFiles t = capture();
    Files.writeString(out, "line 3\n", StandardOpenOption.APPEND);
    try (RandomAccessFile f = new RandomAccessFile(data.toFile(), "rw")) {
      f.seek(2);
      f.write(new byte[] {9, 9}); // changed in place
      f.seek(8);
      f.write(new byte[] {10, 11, 12}); // and grown
    }
    FileRollback.check(t, criu, "1.1");
    FileRollback.Applied applied = FileRollback.apply(t, criu, "1.1");
    assertArrayEquals(outThen, Files.readAllBytes(out));
    assertArrayEquals(dataThen, Files.readAllBytes(data));
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(2, s.filter(p -> p.getFileName().toString().contains(".after-1.1-")).count());
    }
    applied.undo(); // the restore failed: everything is as before the rollback
    assertEquals("line 1\nline 2\nline 3\n", Files.readString(out));
    assertEquals(11, Files.size(data));
  }

  @Test
  void aDeletedReplacedTruncatedOrRewrittenFileIsRefusedByName() throws Exception {
    TrackedFiles t = capture();
    Files.writeString(out, "LINE 2\n", StandardOpenOption.APPEND);
    Path copy = dir.resolve("copy");

    Files.move(out, copy);
    assertRefused(t, out + " was deleted");
    Files.copy(copy, out);
    assertRefused(t, out + " was replaced by another file");
    Files.move(copy, out, StandardCopyOption.REPLACE_EXISTING); // the original inode again

    try (RandomAccessFile f = new RandomAccessFile(out.toFile(), "rw")) {
      f.setLength(5);
    }
    assertRefused(t, "is shorter (5 bytes)");
    try (RandomAccessFile f = new RandomAccessFile(out.toFile(), "rw")) {
      f.seek(0);
      f.write("LINE 1\nline 2\nmore\n".getBytes());
    }
    assertRefused(t, "was changed inside the part written before the checkpoint");
    assertTrue(Files.readString(out).startsWith("LINE 1"), "a refused check changes nothing");
  }

  private void assertRefused(TrackedFiles t, String why) {
    CohortException e =
        assertThrows(CohortException.class, () -> FileRollback.check(t, criu, "1.1"));
    assertEquals(CohortException.Kind.FAILED_PRECONDITION, e.kind());
    assertTrue(e.getMessage().contains(why), e.getMessage());
  }
}
