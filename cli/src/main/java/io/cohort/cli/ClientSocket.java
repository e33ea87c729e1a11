package io.cohort.cli;

import io.cohort.common.CallerInterceptor;
import io.cohort.common.JobInput;
import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The coordinator's client API on a Unix domain socket, for the users of its machine: each
 * connection's caller is the peer the kernel names (see {@link PeerCredentialsNegotiator}), so any
 * local user may connect (the socket is mode 0666) and is served as exactly who they are. The
 * socket's directory is root's and not writable by others, so nobody can put another socket in its
 * place.
 */
final class ClientSocket implements AutoCloseable {
  private final Path socket;
  private final Server server;
  private final EventLoopGroup boss;
  private final EventLoopGroup workers;

  private ClientSocket(Path socket, Server server, EventLoopGroup boss, EventLoopGroup workers) {
    this.socket = socket;
    this.server = server;
    this.boss = boss;
    this.workers = workers;
  }

  /**
   * The longest socket path both ends take: the kernel's sun_path is 108 bytes with its NUL, but
   * the JDK's Unix-domain channel, which the CLI dials with, refuses paths over 106 bytes.
   */
  static final int MAX_PATH_BYTES = 106;

  /**
   * Where the coordinator whose catalog is {@code home} serves its socket: {@code
   * HOME/socket/client.sock}, or, when that path is too long for a Unix socket address, {@code
   * /run/cohort/coordinator-HASH/client.sock}, named by a hash of the home so that each coordinator
   * has its own and the CLI finds the same one.
   */
  static Path path(Path home) {
    Path abs = home.toAbsolutePath().normalize();
    Path inHome = abs.resolve("socket").resolve("client.sock");
    if (inHome.toString().getBytes(StandardCharsets.UTF_8).length <= MAX_PATH_BYTES) {
      return inHome;
    }
    return Path.of("/run/cohort", "coordinator-" + hash(abs.toString()), "client.sock");
  }

  private static String hash(String s) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(d, 0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The target the CLI dials for a socket ({@code --coordinator unix:PATH}). */
  static String target(Path socket) {
    return "unix:" + socket.toAbsolutePath();
  }

  /** Serves {@code service} on {@code socket}, replacing a socket a previous daemon left. */
  static ClientSocket serve(Path socket, BindableService service, PeerIdentity identities)
      throws IOException {
    Path dir = socket.getParent();
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    searchableByAll(dir.getParent());
    if (Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
      Files.delete(socket); // a socket left by a daemon that died; nobody listens on it
    }
    EventLoopGroup boss = new EpollEventLoopGroup(1, new DefaultThreadFactory("socket-boss", true));
    EventLoopGroup workers =
        new EpollEventLoopGroup(1, new DefaultThreadFactory("socket-worker", true));
    Server server;
    try {
      server =
          NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
              .channelType(EpollServerDomainSocketChannel.class)
              .bossEventLoopGroup(boss)
              .workerEventLoopGroup(workers)
              .protocolNegotiator(new PeerCredentialsNegotiator(identities))
              .maxInboundMessageSize(JobInput.MAX_MESSAGE_BYTES) // a Run request carries stdin
              .addService(
                  ServerInterceptors.intercept(
                      service,
                      CallerInterceptor.fromTransport(
                          "the connection's peer credentials could not be read")))
              .build()
              .start();
      Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw-rw-"));
    } catch (IOException | RuntimeException e) {
      boss.shutdownGracefully(0, 0, TimeUnit.SECONDS);
      workers.shutdownGracefully(0, 0, TimeUnit.SECONDS);
      throw e;
    }
    return new ClientSocket(socket, server, boss, workers);
  }

  /**
   * Gives every directory from {@code dir} up search permission for others where it lacks it, so
   * that the users of this machine can reach what is below (search only: nothing becomes listable,
   * and what each file allows is its own).
   */
  static void searchableByAll(Path dir) throws IOException {
    for (Path p = dir.toAbsolutePath(); p != null; p = p.getParent()) {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(p);
      if (!perms.contains(PosixFilePermission.OTHERS_EXECUTE)) {
        Set<PosixFilePermission> more = new java.util.HashSet<>(perms);
        more.add(PosixFilePermission.OTHERS_EXECUTE);
        more.add(PosixFilePermission.GROUP_EXECUTE);
        Files.setPosixFilePermissions(p, more);
      }
    }
  }

  /** Stops taking calls and removes the socket (and its directory under /run/cohort). */
  void shutdown() {
    server.shutdown();
    try {
      Files.deleteIfExists(socket);
      if (socket.startsWith("/run/cohort")) {
        Files.deleteIfExists(socket.getParent());
      }
    } catch (IOException e) {
      // left behind: the next daemon replaces it
    }
  }

  @Override
  public void close() {
    shutdown();
    server.shutdownNow();
    try {
      server.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    boss.shutdownGracefully(0, 0, TimeUnit.SECONDS);
    workers.shutdownGracefully(0, 0, TimeUnit.SECONDS);
  }
}
