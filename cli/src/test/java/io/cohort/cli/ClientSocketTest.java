package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.cohort.common.Caller;
import io.cohort.common.CallerInterceptor;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.ListJobsRequest;
import io.cohort.proto.v1.ListJobsResponse;
import io.cohort.proto.v1.Owner;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The coordinator's Unix socket, for real: a gRPC client on it is served as the process the kernel
 * names (this test's own, root), its groups read from /proc; the socket is open to every local
 * user; the same service on TCP without an identity refuses the call. (Callers of other uids are
 * shown end to end by UsersIT, with real accounts.)
 */
class ClientSocketTest {
  @TempDir Path dir;

  /** Answers ListJobs with one job whose owner is the caller the service was given. */
  private static final class Echo extends CohortGrpc.CohortImplBase {
    @Override
    public void listJobs(ListJobsRequest req, StreamObserver<ListJobsResponse> out) {
      out.onNext(
          ListJobsResponse.newBuilder()
              .addJobs(JobInfo.newBuilder().setOwner(Caller.current().toOwner()))
              .build());
      out.onCompleted();
    }
  }

  private static Owner callerOf(ManagedChannel ch, Metadata headers) {
    return CohortGrpc.newBlockingStub(ch)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
        .listJobs(ListJobsRequest.getDefaultInstance())
        .getJobs(0)
        .getOwner();
  }

  @Test
  @SuppressWarnings("try") // the socket is served for the block
  void theFirstCallTakesTheConnectionDialledAheadAndItsFailure() throws Exception {
    Path socket = ClientSocket.path(dir.resolve("home"));
    // Nothing listens yet: the connection begun ahead fails, and the first call with it.
    UnixSocketDialer early = new UnixSocketDialer(socket);
    assertThrows(ExecutionException.class, () -> early.dialAhead().get(10, TimeUnit.SECONDS));
    ManagedChannel refused = Cli.channel(early, "localhost");
    try {
      StatusRuntimeException e =
          assertThrows(StatusRuntimeException.class, () -> callerOf(refused, new Metadata()));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    } finally {
      refused.shutdownNow();
    }
    try (ClientSocket s = ClientSocket.serve(socket, new Echo(), PeerIdentity.system())) {
      UnixSocketDialer dialer = new UnixSocketDialer(socket);
      dialer.dialAhead().get(10, TimeUnit.SECONDS);
      // Gone from the file system, the socket takes no new connection: only the one made ahead
      // can carry the call.
      Files.delete(socket);
      ManagedChannel ch = Cli.channel(dialer, "localhost");
      try {
        assertEquals(PeerIdentity.effectiveUid(), callerOf(ch, new Metadata()).getUid());
      } finally {
        ch.shutdownNow();
      }
    }
  }

  /**
   * Serves {@code socket}, dials it as the CLI does, and returns the uid the call was served as.
   */
  @SuppressWarnings("try") // the socket is served for the block
  private static int servedAs(Path socket) throws Exception {
    try (ClientSocket s = ClientSocket.serve(socket, new Echo(), PeerIdentity.system())) {
      ManagedChannel ch = Cli.channel(ClientSocket.target(socket));
      try {
        return callerOf(ch, new Metadata()).getUid();
      } finally {
        ch.shutdownNow();
      }
    }
  }

  @Test
  @SuppressWarnings("try") // the socket is served for the block
  void aClientOnTheSocketIsServedAsTheKernelNamesIt() throws Exception {
    Path socket = ClientSocket.path(dir.resolve("home"));
    try (ClientSocket s = ClientSocket.serve(socket, new Echo(), PeerIdentity.system())) {
      assertEquals(
          "rw-rw-rw-", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
      assertEquals(
          "rwxr-xr-x",
          PosixFilePermissions.toString(Files.getPosixFilePermissions(socket.getParent())));
      ManagedChannel ch = Cli.channel(ClientSocket.target(socket));
      try {
        // A header naming someone else counts for nothing: only the transport names the caller.
        Metadata claim = new Metadata();
        claim.put(Metadata.Key.of("cohort-caller", Metadata.ASCII_STRING_MARSHALLER), "1001");
        Owner o = callerOf(ch, claim);
        assertEquals(PeerIdentity.effectiveUid(), o.getUid());
        assertEquals(selfStatus("Gid:").get(1), o.getGid());
        List<Integer> groups = selfStatus("Groups:");
        assertEquals(groups, o.getGroupsList());
        assertEquals(PeerIdentity.effectiveUid() == 0 ? "root" : o.getUser(), o.getUser());
      } finally {
        ch.shutdownNow();
      }
    }
    // A second daemon replaces the socket the first left behind.
    assertEquals(PeerIdentity.effectiveUid(), servedAs(socket));
  }

  @Test
  void aHomeTooDeepForASocketAddressGetsOneUnderRun() throws Exception {
    Path deep = dir;
    while (deep.toString().length() < 120) {
      deep = deep.resolve("a-directory-deep-down");
    }
    Path socket = ClientSocket.path(deep);
    assertEquals(socket, ClientSocket.path(deep), "the CLI finds the daemon's socket again");
    assertEquals(Path.of("/run/cohort"), socket.getParent().getParent());
    assertEquals(PeerIdentity.effectiveUid(), servedAs(socket));
    assertFalse(Files.exists(socket.getParent()), "the socket's directory under /run is left");
  }

  /**
   * At the limit, a socket in the home is one the CLI can dial (106 bytes); one byte more, and it
   * goes under /run, where the CLI finds it too.
   */
  @Test
  void aSocketPathAtTheLimitIsOneTheClientCanDial() throws Exception {
    String tail = "/socket/client.sock";
    for (int bytes : new int[] {ClientSocket.MAX_PATH_BYTES, ClientSocket.MAX_PATH_BYTES + 1}) {
      Path home = dir.resolve("h".repeat(bytes - dir.toString().length() - 1 - tail.length()));
      Path socket = ClientSocket.path(home);
      assertEquals(
          bytes == ClientSocket.MAX_PATH_BYTES, socket.startsWith(home), socket.toString());
      assertEquals(PeerIdentity.effectiveUid(), servedAs(socket));
    }
  }

  /**
   * A client that dials before the daemon serves (as `cluster up` does while the coordinator
   * starts), and again after the daemon was restarted, gets through once the socket is there: a
   * refused dial is retried, not kept.
   */
  @Test
  @SuppressWarnings("try") // the socket is served for the block
  void aClientFindsADaemonThatStartsLateOrRestarts() throws Exception {
    Path socket = ClientSocket.path(dir.resolve("home"));
    ManagedChannel ch = Cli.channel(ClientSocket.target(socket));
    try {
      StatusRuntimeException none =
          assertThrows(StatusRuntimeException.class, () -> callerOf(ch, new Metadata()));
      assertEquals(Status.Code.UNAVAILABLE, none.getStatus().getCode());
      for (int life = 0; life < 2; life++) {
        try (ClientSocket s = ClientSocket.serve(socket, new Echo(), PeerIdentity.system())) {
          Owner o =
              CohortGrpc.newBlockingStub(ch)
                  .withWaitForReady()
                  .withDeadlineAfter(20, java.util.concurrent.TimeUnit.SECONDS)
                  .listJobs(ListJobsRequest.getDefaultInstance())
                  .getJobs(0)
                  .getOwner();
          assertEquals(PeerIdentity.effectiveUid(), o.getUid());
        }
      }
    } finally {
      ch.shutdownNow();
    }
  }

  @Test
  void theApiOnTcpWithoutAnIdentityRefusesTheCall() throws Exception {
    Server tcp =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(
                ServerInterceptors.intercept(
                    new Echo(), CallerInterceptor.fromTransport("use the Unix socket")))
            .build()
            .start();
    // In the clear: what is refused here is the missing identity, not the transport.
    ManagedChannel ch =
        io.grpc.okhttp.OkHttpChannelBuilder.forTarget("127.0.0.1:" + tcp.getPort())
            .usePlaintext()
            .build();
    try {
      StatusRuntimeException e =
          assertThrows(StatusRuntimeException.class, () -> callerOf(ch, new Metadata()));
      assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
      assertEquals("use the Unix socket", e.getStatus().getDescription());
    } finally {
      ch.shutdownNow();
      tcp.shutdownNow();
    }
  }

  /** A numeric line of /proc/self/status ("Gid:" gives real, effective, saved, fs). */
  private static List<Integer> selfStatus(String key) throws Exception {
    for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (l.startsWith(key)) {
        List<Integer> out = new ArrayList<>();
        for (String w : l.substring(key.length()).strip().split("\\s+")) {
          if (!w.isEmpty()) {
            out.add(Integer.parseInt(w));
          }
        }
        return out;
      }
    }
    throw new AssertionError("no " + key + " in /proc/self/status");
  }
}
