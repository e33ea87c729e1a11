package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.Caller;
import io.cohort.common.CohortException;
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
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The coordinator's TCP callers, with this machine's real munged: a call that carries the CLI's
 * credential is served as the user who made it, with that user's groups from the user database; a
 * call without one, with a forged or replayed one, or with one made for another call, is refused
 * with UNAUTHENTICATED before the service sees it; the CLI never sends one in the clear.
 */
class MungeAuthenticatorTest {
  private static final String LIST = CohortGrpc.getListJobsMethod().getFullMethodName();
  private static final String KILL = CohortGrpc.getKillJobMethod().getFullMethodName();

  /** Answers ListJobs with one job whose owner is the caller; counts the calls it served. */
  private static final class Echo extends CohortGrpc.CohortImplBase {
    final AtomicInteger served = new AtomicInteger();

    @Override
    public void listJobs(ListJobsRequest req, StreamObserver<ListJobsResponse> out) {
      served.incrementAndGet();
      out.onNext(
          ListJobsResponse.newBuilder()
              .addJobs(JobInfo.newBuilder().setOwner(Caller.current().toOwner()))
              .build());
      out.onCompleted();
    }
  }

  private final Echo echo = new Echo();
  private final Munge munge = Munge.system();
  private final MungeAuthenticator auth =
      new MungeAuthenticator(munge, PeerIdentity.system(), "use the Unix socket", System::nanoTime);
  private Server server;
  private ManagedChannel channel;

  @BeforeAll
  static void mungedRuns() {
    MungeTest.mungedRuns();
  }

  private CohortGrpc.CohortBlockingStub serve() throws Exception {
    String name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name)
            .addService(ServerInterceptors.intercept(echo, auth))
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).build();
    return CohortGrpc.newBlockingStub(channel);
  }

  @AfterEach
  void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (server != null) {
      server.shutdownNow();
    }
  }

  private static Owner owner(CohortGrpc.CohortBlockingStub stub) {
    return stub.listJobs(ListJobsRequest.getDefaultInstance()).getJobs(0).getOwner();
  }

  private static CohortGrpc.CohortBlockingStub with(
      CohortGrpc.CohortBlockingStub stub, String credential) {
    Metadata h = new Metadata();
    h.put(MungeCredentials.HEADER, credential);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(h));
  }

  private Status refusal(CohortGrpc.CohortBlockingStub stub) {
    return assertThrows(StatusRuntimeException.class, () -> owner(stub)).getStatus();
  }

  @Test
  void credentialsBegunAsCallsAreCreatedServeEachCallOnce() throws Exception {
    // The CLI's stub over TCP: each call's credential is begun when the call is created. Three
    // calls of one method are three credentials (munged would refuse a second use of one).
    CohortGrpc.CohortBlockingStub stub =
        MungeCredentials.overTlsDialer(munge, null).attachTo(serve());
    for (int i = 0; i < 3; i++) {
      assertEquals(PeerIdentity.effectiveUid(), owner(stub).getUid());
    }
    assertEquals(3, echo.served.get());
  }

  @Test
  void theCliCredentialIsServedAsItsMaker() throws Exception {
    CohortGrpc.CohortBlockingStub stub =
        serve().withCallCredentials(MungeCredentials.overTls(munge));
    Owner o = owner(stub);
    assertEquals(PeerIdentity.effectiveUid(), o.getUid());
    assertEquals(PeerIdentity.system().name(o.getUid()), o.getUser());
    assertEquals(MungeAuthenticator.lookUp(o.getUser()), o.getGroupsList());
    // Each call its own credential: a second call is no replay.
    assertEquals(o, owner(stub));
    assertEquals(2, echo.served.get());
  }

  @Test
  void theIdentityIsTheCredentialsNotTheConnections() {
    // Root may have munged name another uid (as a user on another machine would be named).
    Caller nobody =
        auth.authenticate(
            MungeTest.mungeWith(
                "--uid", "65534", "--gid", "65534", "--string", Munge.callPayload(LIST)),
            LIST);
    assertEquals(65534, nobody.uid());
    assertEquals(65534, nobody.gid());
    assertEquals(PeerIdentity.system().name(65534), nobody.user());
    assertEquals(MungeAuthenticator.lookUp(nobody.user()), nobody.groups());
    Caller stranger =
        auth.authenticate(
            MungeTest.mungeWith(
                "--uid", "54321", "--gid", "54322", "--string", Munge.callPayload(LIST)),
            LIST);
    assertEquals(new Caller(54321, 54322, List.of(), ""), stranger, "unknown here: no groups");
  }

  @Test
  void noForgedReplayedOrMisdirectedCredentialGetsThrough() throws Exception {
    CohortGrpc.CohortBlockingStub stub = serve();
    Status none = refusal(stub);
    assertEquals(Status.Code.UNAUTHENTICATED, none.getCode());
    assertTrue(none.getDescription().contains("no MUNGE credential"), none.getDescription());
    assertTrue(none.getDescription().contains("use the Unix socket"), none.getDescription());

    String valid = munge.credential(Munge.callPayload(LIST));
    String forged =
        valid.substring(0, 20) + (valid.charAt(20) == 'A' ? 'B' : 'A') + valid.substring(21);
    Status f = refusal(with(stub, forged));
    assertEquals(Status.Code.UNAUTHENTICATED, f.getCode());
    assertTrue(f.getDescription().contains("not a valid MUNGE credential"), f.getDescription());

    assertEquals(PeerIdentity.effectiveUid(), owner(with(stub, valid)).getUid());
    Status replayed = refusal(with(stub, valid));
    assertEquals(Status.Code.UNAUTHENTICATED, replayed.getCode());
    assertTrue(replayed.getDescription().contains("replayed"), replayed.getDescription());

    // Made for a kill, spent on a list; made for no call at all.
    Status misdirected = refusal(with(stub, munge.credential(Munge.callPayload(KILL))));
    assertEquals(Status.Code.UNAUTHENTICATED, misdirected.getCode());
    assertTrue(
        misdirected.getDescription().contains("made for another call"),
        misdirected.getDescription());
    Status unbound = refusal(with(stub, MungeTest.mungeWith("--no-input", "--restrict-uid", "0")));
    assertEquals(Status.Code.UNAUTHENTICATED, unbound.getCode());
    assertEquals(1, echo.served.get(), "only the valid credential's call reached the service");
  }

  @Test
  void withoutMungedTheCallIsUnavailableNotServed() throws Exception {
    MungeAuthenticator blind =
        new MungeAuthenticator(
            new Munge("/nonexistent/munge.socket.2"), PeerIdentity.system(), "", System::nanoTime);
    CohortException e =
        assertThrows(
            CohortException.class,
            () -> blind.authenticate(munge.credential(Munge.callPayload(LIST)), LIST));
    assertEquals(CohortException.Kind.UNAVAILABLE, e.kind());
    assertTrue(e.getMessage().contains("munged does not answer"), e.getMessage());
  }

  @Test
  void withoutMungedTheCliSaysWhatToDoAndSendsNothing() throws Exception {
    Munge down = new Munge("/nonexistent/munge.socket.2");
    Status s = refusal(serve().withCallCredentials(MungeCredentials.overTls(down)));
    assertEquals(Status.Code.UNAUTHENTICATED, s.getCode());
    assertTrue(s.getDescription().contains("munged must run on this machine"), s.getDescription());
    assertEquals(0, echo.served.get());
  }

  @Test
  void theCliSendsNoCredentialInTheClear() throws Exception {
    Server tcp =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(ServerInterceptors.intercept(echo, auth))
            .build()
            .start();
    ManagedChannel plain =
        io.grpc.okhttp.OkHttpChannelBuilder.forTarget("127.0.0.1:" + tcp.getPort())
            .usePlaintext()
            .build();
    try {
      Status s =
          refusal(
              CohortGrpc.newBlockingStub(plain)
                  .withCallCredentials(MungeCredentials.overTls(munge)));
      assertEquals(Status.Code.UNAUTHENTICATED, s.getCode());
      assertTrue(s.getDescription().contains("only over TLS"), s.getDescription());
      assertEquals(0, echo.served.get());
    } finally {
      plain.shutdownNow();
      tcp.shutdownNow();
    }
  }
}
