package io.cohort.agent;

import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import io.cohort.proto.criu.CoreEntry;
import io.cohort.proto.criu.CredsEntry;
import io.cohort.proto.criu.FileEntry;
import io.cohort.proto.criu.MmEntry;
import io.cohort.proto.criu.PstreeEntry;
import io.cohort.proto.criu.RegFileEntry;
import io.cohort.proto.criu.TaskCoreEntry;
import io.cohort.proto.criu.ThreadCoreEntry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/** Writes and edits CRIU image files in tests, as CRIU lays them out ({@link CriuImageFile}). */
final class CriuImageWriter {
  private CriuImageWriter() {}

  /** {@code file} with {@code entries}, under the two magics. */
  static void write(Path file, int magic, List<? extends Message> entries) throws IOException {
    List<byte[]> bytes = new ArrayList<>();
    int size = 8;
    for (Message m : entries) {
      bytes.add(m.toByteArray());
      size += 4 + bytes.get(bytes.size() - 1).length;
    }
    ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(CriuImageFile.COMMON_MAGIC).putInt(magic);
    bytes.forEach(e -> b.putInt(e.length).put(e));
    Files.write(file, b.array());
  }

  /**
   * Rewrites the first entry of an image file as an attacker would: parsed with the subset messages
   * (protobuf keeps every field it does not know), changed, written back before the rest.
   */
  static <T extends Message> void edit(
      Path file, int magic, Parser<T> parser, UnaryOperator<T> change) throws IOException {
    byte[] old = Files.readAllBytes(file);
    byte[] first = change.apply(CriuImageFile.readFirst(file, magic, parser)).toByteArray();
    int restAt = 12 + ByteBuffer.wrap(old, 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
    ByteBuffer b =
        ByteBuffer.allocate(12 + first.length + old.length - restAt).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(CriuImageFile.COMMON_MAGIC).putInt(magic).putInt(first.length).put(first);
    b.put(old, restAt, old.length - restAt);
    Files.write(file, b.array());
  }

  /**
   * A made-up image of single-threaded tasks: {@code pid 1} (ppid 0) and {@code pid 2} (ppid 1),
   * each running {@code exes[i]} with {@code creds[i]}.
   */
  static void twoTasks(Path dir, List<String> exes, List<CredsEntry> creds) throws IOException {
    Files.createDirectories(dir);
    List<PstreeEntry> tree = new ArrayList<>();
    List<FileEntry> files = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      int pid = i + 1;
      tree.add(PstreeEntry.newBuilder().setPid(pid).setPpid(i).addThreads(pid).build());
      String exe = exes.get(i);
      CoreEntry core =
          CoreEntry.newBuilder()
              .setTc(
                  TaskCoreEntry.newBuilder()
                      .setTaskState(1)
                      .setComm(exe.substring(exe.lastIndexOf('/') + 1)))
              .setThreadCore(ThreadCoreEntry.newBuilder().setCreds(creds.get(i)))
              .build();
      write(dir.resolve("core-" + pid + ".img"), CriuImageFile.CORE_MAGIC, List.of(core));
      write(
          dir.resolve("mm-" + pid + ".img"),
          CriuImageFile.MM_MAGIC,
          List.of(MmEntry.newBuilder().setExeFileId(pid).build()));
      files.add(
          FileEntry.newBuilder()
              .setType(1)
              .setId(pid)
              .setReg(RegFileEntry.newBuilder().setId(pid).setName(exe))
              .build());
    }
    write(dir.resolve("pstree.img"), CriuImageFile.PSTREE_MAGIC, tree);
    write(dir.resolve("files.img"), CriuImageFile.FILES_MAGIC, files);
  }

  /** Credentials of uid:gid in all four, no groups, no capabilities. */
  static CredsEntry creds(int uid, int gid) {
    return CredsEntry.newBuilder()
        .setUid(uid)
        .setEuid(uid)
        .setSuid(uid)
        .setFsuid(uid)
        .setGid(gid)
        .setEgid(gid)
        .setSgid(gid)
        .setFsgid(gid)
        .build();
  }
}
