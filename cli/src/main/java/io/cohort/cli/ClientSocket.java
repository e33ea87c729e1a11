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
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
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
  private final Server server;
  private final EventLoopGroup boss;
  private final EventLoopGroup workers;

  private ClientSocket(Server server, EventLoopGroup boss, EventLoopGroup workers) {
    this.server = server;
    this.boss = boss;
    this.workers = workers;
  }

  /** Where the coordinator whose catalog is {@code home} serves its socket. */
  static Path path(Path home) {
    return home.resolve("socket").resolve("client.sock");
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
    // Users must be able to reach it: every directory above needs search permission for others.
    for (Path p = dir.getParent(); p != null; p = p.getParent()) {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(p);
      if (!perms.contains(PosixFilePermission.OTHERS_EXECUTE)) {
        Set<PosixFilePermission> more = new java.util.HashSet<>(perms);
        more.add(PosixFilePermission.OTHERS_EXECUTE);
        more.add(PosixFilePermission.GROUP_EXECUTE);
        Files.setPosixFilePermissions(p, more); // search only: nothing becomes listable
      }
    }
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
    return new ClientSocket(server, boss, workers);
  }

  void shutdown() {
    server.shutdown();
  }

  @Override
  public void close() {
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
