package io.cohort.agent;

import io.cohort.common.DurableFiles;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;

/**
 * The programs the agent hands to vhosts and CRIU, installed under its home: the native programs
 * (by content) and CRIU's action script.
 */
final class NativeInstalls {
  private NativeInstalls() {}

  /**
   * Copies a native program (cohort-init, cohort-rsh) to a path named after its content. CRIU
   * restores a process by mapping the same binary file again, and refuses it if the file changed: a
   * rebuilt native/build must never break the restart of an older checkpoint.
   */
  static Path contentAddressed(Path source, Path home, String name) {
    if (!Files.isRegularFile(source)) {
      return source; // VhostLauncher reports it missing, with the fix
    }
    try {
      String sha = LocalImageStore.digest(source, name).getSha256().substring(0, 16);
      Path target = home.resolve("bin").resolve(name + "-" + sha);
      if (!Files.exists(target)) {
        Files.createDirectories(target.getParent());
        Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp");
        Files.copy(source, tmp, StandardCopyOption.REPLACE_EXISTING);
        tmp.toFile().setExecutable(true, false);
        DurableFiles.fsync(tmp);
        DurableFiles.rename(tmp, target);
      }
      return target;
    } catch (IOException e) {
      throw DurableFiles.failure("cannot install " + source, e);
    }
  }

  /** CRIU's action script (the post-dump hook's side of {@link DumpSession}). */
  static Path actionScript(Path home) {
    Path script = home.resolve("bin").resolve("criu-action.sh");
    try (InputStream in = NodeAgent.class.getResourceAsStream("criu-action.sh")) {
      byte[] want = in.readAllBytes();
      if (!Files.exists(script) || !Arrays.equals(Files.readAllBytes(script), want)) {
        DurableFiles.writeAtomically(script, want);
      }
      script.toFile().setExecutable(true, true);
      return script;
    } catch (IOException e) {
      throw DurableFiles.failure("cannot install " + script, e);
    }
  }
}
