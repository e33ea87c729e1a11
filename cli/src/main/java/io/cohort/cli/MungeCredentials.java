package io.cohort.cli;

import io.grpc.CallCredentials;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import io.grpc.stub.AbstractStub;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Proves who the user is to a coordinator reached over TCP: each call (each attempt of it) gets a
 * fresh MUNGE credential, made for that call's method ({@link Munge#callPayload}) and decodable by
 * root only, in the {@link #HEADER} header. The credential goes only over a transport that
 * encrypts: one read on its way is good for one call.
 *
 * <p>On a stub from {@link #attachTo}, a call's credential is begun as the call is created, so that
 * {@code munge} runs while the connection is being made rather than after it. A command's first
 * call over a {@link TlsDialer} takes the credential its connection's program made, if it was made
 * for that call: no {@code munge} process at all.
 */
final class MungeCredentials extends CallCredentials {
  /**
   * The header a credential goes in (ASCII: a credential is base64 in armor). Here, not in {@link
   * MungeAuthenticator}, whose logger a command would otherwise start.
   */
  static final Metadata.Key<String> HEADER =
      Metadata.Key.of("cohort-munge", Metadata.ASCII_STRING_MARSHALLER);

  private final Munge munge;
  private final boolean dialerEncrypts;

  /** The dialer whose first connection may bring the first call's credential, or null. */
  private final TlsDialer dialer;

  /**
   * The credential begun for a call (by {@link #attachTo}'s interceptor), taken by its first try.
   */
  private static final CallOptions.Key<AtomicReference<CompletableFuture<String>>> BEGUN =
      CallOptions.Key.create("cohort-munge-begun");

  private MungeCredentials(Munge munge, boolean dialerEncrypts, TlsDialer dialer) {
    this.munge = munge;
    this.dialerEncrypts = dialerEncrypts;
    this.dialer = dialer;
  }

  /** For a channel whose own transport must encrypt (gRPC's TLS). */
  static MungeCredentials overTls(Munge munge) {
    return new MungeCredentials(munge, false, null);
  }

  /**
   * For a channel through {@code dialer}: gRPC sees plain bytes, which the dialer's program
   * encrypts on the wire. A call whose credential the dialer's first connection made ({@link
   * TlsDialer#dialAhead}) takes that one; every other call gets one from {@code munge}.
   */
  static MungeCredentials overTlsDialer(Munge munge, TlsDialer dialer) {
    return new MungeCredentials(munge, true, dialer);
  }

  @Override
  public void applyRequestMetadata(
      RequestInfo info, Executor appExecutor, MetadataApplier applier) {
    if (!dialerEncrypts && info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY) {
      applier.fail(
          Status.UNAUTHENTICATED.withDescription(
              "a MUNGE credential is sent only over TLS, and this connection to "
                  + info.getAuthority()
                  + " is not encrypted"));
      return;
    }
    String method = info.getMethodDescriptor().getFullMethodName();
    AtomicReference<CompletableFuture<String>> begun = info.getCallOptions().getOption(BEGUN);
    CompletableFuture<String> credential = begun == null ? null : begun.getAndSet(null);
    if (credential == null) {
      // `munge` is a process: off the transport's thread. (A retry comes here: a credential is
      // good for one attempt.)
      credential = make(method, appExecutor);
    }
    credential.whenComplete(
        (c, e) -> {
          if (e != null) {
            Throwable why =
                e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
            applier.fail(Status.UNAUTHENTICATED.withDescription(why.getMessage()));
            return;
          }
          Metadata headers = new Metadata();
          headers.put(HEADER, c);
          applier.apply(headers);
        });
  }

  private CompletableFuture<String> make(String method, Executor executor) {
    String payload = Munge.callPayload(method);
    CompletableFuture<String> ahead = dialer == null ? null : dialer.credentialFor(payload);
    if (ahead == null) {
      return CompletableFuture.supplyAsync(() -> munge.credential(payload), executor);
    }
    return ahead.thenCompose(
        c ->
            c.isEmpty()
                ? CompletableFuture.supplyAsync(() -> munge.credential(payload), executor)
                : CompletableFuture.completedFuture(c));
  }

  /**
   * {@code stub} with these credentials, and an interceptor that begins each call's credential as
   * the call is created, on a thread of its own.
   */
  <S extends AbstractStub<S>> S attachTo(S stub) {
    ClientInterceptor begin =
        new ClientInterceptor() {
          @Override
          public <Q, R> ClientCall<Q, R> interceptCall(
              MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
            // The call's own: a call that ends before it is sent leaves nothing for another.
            CompletableFuture<String> mine =
                make(method.getFullMethodName(), MungeCredentials::onItsOwnThread);
            return next.newCall(method, options.withOption(BEGUN, new AtomicReference<>(mine)));
          }
        };
    return stub.withCallCredentials(this).withInterceptors(begin);
  }

  private static void onItsOwnThread(Runnable r) {
    Thread t = new Thread(r, "munge");
    t.setDaemon(true);
    t.start();
  }
}
