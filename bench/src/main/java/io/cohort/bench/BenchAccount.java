package io.cohort.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * An unprivileged account for a benchmark's user-side measurements ({@code useradd --system}, no
 * home, a login shell as a cluster user's), removed on close even if the benchmark failed.
 */
final class BenchAccount implements AutoCloseable {
  final String name;
  final int uid;
  final int gid;

  private BenchAccount(String name, int uid, int gid) {
    this.name = name;
    this.uid = uid;
    this.gid = gid;
  }

  /** A new account named {@code name}; one left by an earlier run that died goes first. */
  static BenchAccount create(String name) throws IOException, InterruptedException {
    if (exec("id", "-u", name).rc == 0) {
      must("userdel", name);
    }
    must("useradd", "--system", "--no-create-home", "--shell", "/bin/bash", name);
    try {
      return new BenchAccount(
          name,
          Integer.parseInt(must("id", "-u", name).strip()),
          Integer.parseInt(must("id", "-g", name).strip()));
    } catch (IOException | RuntimeException e) {
      exec("userdel", name);
      throw e;
    }
  }

  /**
   * Removes the account. A failure is reported, not thrown: the part's figures are worth more than
   * the account, which the next run removes first ({@link #create}).
   */
  @Override
  public void close() {
    try {
      must("userdel", name);
    } catch (IOException e) {
      System.err.printf("bench: the account %s is left: %s%n", name, e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      System.err.printf("bench: interrupted removing the account %s%n", name);
    }
  }

  private record Out(int rc, String text) {}

  private static String must(String... cmd) throws IOException, InterruptedException {
    Out o = exec(cmd);
    if (o.rc != 0) {
      throw new IOException(String.join(" ", cmd) + " exited " + o.rc + ": " + o.text.strip());
    }
    return o.text;
  }

  private static Out exec(String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(List.of(cmd)).redirectErrorStream(true).start();
    String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    return new Out(p.waitFor(), text);
  }
}
