package io.cohort.cli;

import io.cohort.common.CohortException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Connections to a coordinator's TCP client port over TLS, for gRPC's OkHttp transport: each is a
 * {@code cohort-tls-dial HOST PORT CA} process (native/), whose stdin and stdout are the
 * connection's plain side. It accepts only a server whose certificate chains to the cluster's CA
 * and names HOST, and presents none: the user's MUNGE credential in each call says who calls.
 *
 * <p>Why not the JDK's TLS: a command is a fresh JVM, where JSSE's set-up and first handshake take
 * about 0.25 s, more than all the rest of {@code cohort ps}; OpenSSL in its own process does the
 * same in a few milliseconds (docs/design.md, "The CLI's TLS").
 */
final class TlsDialer extends StreamSocket.Dialer {
  static final String PROGRAM = "cohort-tls-dial";

  private final List<String> command;
  private final Path ca;
  private final String host;
  private final int port;

  /** The payload of the credential the connection begun ahead makes (null before it begins). */
  private String aheadPayload;

  /** That credential once its connection is made ("" if the program could not make one). */
  private final CompletableFuture<String> aheadCredential = new CompletableFuture<>();

  private boolean aheadCredentialTaken;

  private TlsDialer(Path program, String host, int port, Path ca) {
    this.command = List.of(program.toString(), host, Integer.toString(port), ca.toString());
    this.ca = ca;
    this.host = host;
    this.port = port;
  }

  /**
   * A dialer to {@code address} (HOST:PORT, an IPv6 HOST in brackets) through the program in {@code
   * nativeDir}, trusting {@code ca}.
   */
  static TlsDialer to(String address, Path nativeDir, Path ca) {
    int colon = address.lastIndexOf(':');
    String host = colon > 0 ? address.substring(0, colon) : "";
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(address.substring(colon + 1));
    } catch (NumberFormatException e) {
      port = -1;
    }
    if (host.isEmpty() || port < 1 || port > 65535) {
      throw CohortException.invalid(
          "coordinator address %s: expected unix:PATH or HOST:PORT (an IPv6 HOST in brackets)",
          address);
    }
    Path program = nativeDir.resolve(PROGRAM);
    if (!Files.isExecutable(program)) {
      throw CohortException.precondition(
          "%s is missing (the CLI's TLS to a coordinator over TCP): run `cohort setup`, which"
              + " builds native/, or set COHORT_NATIVE_DIR to where it is",
          program);
    }
    return new TlsDialer(program, host, port, ca);
  }

  /** The authority calls name: HOST:PORT as the user gave it. */
  String authority() {
    return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
  }

  /**
   * Begins the first connection now ({@link StreamSocket.Dialer#dialAhead}): the program's start,
   * its TLS handshake and its verdict all run while this JVM goes on starting. The program also
   * makes the MUNGE credential carrying {@code payload} with {@code munge}'s munged, for the
   * command's first call ({@link #credentialFor}): that call then starts no {@code munge} process.
   * Returns the connection's making (a second call changes nothing).
   */
  synchronized Future<StreamSocket> dialAhead(Munge munge, String payload) {
    List<String> cmd = new ArrayList<>(command);
    cmd.add(munge.socket());
    cmd.add(payload);
    if (aheadPayload == null) {
      aheadPayload = payload;
    }
    return dialAhead("tls-dial", () -> connectedAhead(cmd));
  }

  private StreamSocket connectedAhead(List<String> cmd) throws IOException {
    try {
      return connected(new ProcessBuilder(cmd).start(), true);
    } finally {
      // No credential line read (the dial failed): the first call fails with the connection, or
      // makes its own. After the line, this changes nothing.
      aheadCredential.complete("");
    }
  }

  /**
   * The credential made with the connection dialled ahead, if it was made for {@code payload} and
   * nobody took it yet: it completes when the connection is made, with "" when the program could
   * not make one (the caller then makes its own, whose failure says why). Null otherwise.
   */
  synchronized CompletableFuture<String> credentialFor(String payload) {
    if (aheadCredentialTaken || !payload.equals(aheadPayload)) {
      return null;
    }
    aheadCredentialTaken = true;
    return aheadCredential;
  }

  /**
   * A connection once the program has verified the server (it writes one zero byte then). A failed
   * dial throws {@link Failed} with the program's own message: the transport makes it the cause of
   * the call's UNAVAILABLE.
   */
  @Override
  StreamSocket connect() throws IOException {
    return connected(new ProcessBuilder(command).start(), false);
  }

  /** The connection through {@code p}, once it said the server is verified (and read its line). */
  private StreamSocket connected(Process p, boolean withCredential) throws IOException {
    try {
      if (p.getInputStream().read() == 0) {
        if (withCredential) {
          aheadCredential.complete(credentialLine(p.getInputStream()));
        }
        return new ProcessSocket(p, InetSocketAddress.createUnresolved(host, port));
      }
      String why = said(p);
      int status = exitStatus(p);
      String said = why.isEmpty() ? PROGRAM + " exited with status " + status : why;
      if (status == NOT_THE_CLUSTER) {
        said +=
            "; it was checked against "
                + ca
                + ": the cluster's ca.crt must be there, or in the file $COHORT_CA names";
      }
      throw new Failed(said, status == NOT_THE_CLUSTER || status == NOT_THE_CLIENT_PORT);
    } catch (IOException | RuntimeException e) {
      // No connection: nothing of the program is left behind.
      p.destroy();
      p.getOutputStream().close();
      p.getInputStream().close();
      p.getErrorStream().close();
      throw e;
    }
  }

  /** The credential line the program writes after its zero byte, without its newline. */
  private static String credentialLine(InputStream in) throws IOException {
    StringBuilder line = new StringBuilder();
    for (int c = in.read(); c != '\n'; c = in.read()) {
      if (c < 0 || line.length() > Munge.MAX_CREDENTIAL) {
        throw new IOException(PROGRAM + " wrote no whole credential line");
      }
      line.append((char) c);
    }
    return line.toString();
  }

  /** What the program said on stderr, without its name ("" if nothing). */
  private static String said(Process p) throws IOException {
    String why = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    return why.replaceFirst("^" + PROGRAM + ": ", "");
  }

  /** The program's exit status for a server it does not take for the cluster's (native/). */
  private static final int NOT_THE_CLUSTER = 4;

  /** Its exit status for a server that refused it after the handshake: a daemons' port. */
  private static final int NOT_THE_CLIENT_PORT = 6;

  private static int exitStatus(Process p) {
    try {
      if (p.waitFor(2, TimeUnit.SECONDS)) {
        return p.exitValue();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    p.destroy();
    return -1;
  }

  /** A dial that failed, in the program's words. */
  static final class Failed extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Whether a server answered but is not the cluster coordinator's client port: not the cluster's
     * certificate, not TLS, or a daemons' port (which wants a client certificate).
     */
    final boolean wrongServer;

    Failed(String message, boolean wrongServer) {
      super(message);
      this.wrongServer = wrongServer;
    }
  }

  /** The connection through one {@code cohort-tls-dial}: its stdin and stdout. */
  private static final class ProcessSocket extends StreamSocket {
    private final Process process;
    private final SocketAddress remote;
    private final OutputStream out;

    ProcessSocket(Process process, SocketAddress remote) {
      this.process = process;
      this.remote = remote;
      OutputStream stdin = process.getOutputStream();
      this.out =
          new OutputStream() {
            @Override
            public void write(int b) throws IOException {
              try {
                stdin.write(b);
              } catch (IOException e) {
                throw failure(e);
              }
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
              try {
                stdin.write(b, off, len);
              } catch (IOException e) {
                throw failure(e);
              }
            }

            @Override
            public void flush() throws IOException {
              try {
                stdin.flush();
              } catch (IOException e) {
                throw failure(e);
              }
            }

            @Override
            public void close() throws IOException {
              stdin.close();
            }
          };
    }

    @Override
    public InputStream getInputStream() {
      return process.getInputStream();
    }

    @Override
    public OutputStream getOutputStream() {
      return out;
    }

    /**
     * The program's own words when it ended with an error (the server closed the connection after
     * the handshake, as a port that wants a client certificate does), else {@code e}.
     */
    private IOException failure(IOException e) {
      try {
        if (process.waitFor(500, TimeUnit.MILLISECONDS) && process.exitValue() != 0) {
          String why = said(process);
          if (!why.isEmpty()) {
            return new IOException(why, e);
          }
        }
      } catch (InterruptedException interrupted) {
        Thread.currentThread().interrupt();
      } catch (IOException unread) {
        e.addSuppressed(unread);
      }
      return e;
    }

    @Override
    public boolean isConnected() {
      return true;
    }

    @Override
    public SocketAddress getRemoteSocketAddress() {
      return remote;
    }

    @Override
    public SocketAddress getLocalSocketAddress() {
      return null; // the program's, not this process's
    }

    @Override
    public void shutdownOutput() throws IOException {
      process.getOutputStream().close();
    }

    @Override
    void release() throws IOException {
      // Its stdin's end tells the program to close the connection (TLS close_notify) and exit.
      try {
        process.getOutputStream().close();
      } finally {
        process.getInputStream().close();
        process.getErrorStream().close();
        if (!process.isAlive()) {
          return;
        }
        // A program stuck on the network must not outlive the command.
        process
            .onExit()
            .orTimeout(1, TimeUnit.SECONDS)
            .exceptionally(
                stuck -> {
                  process.destroy();
                  return process;
                });
      }
    }
  }
}
