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
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;

/**
 * Proves who the user is to a coordinator reached over TCP: each call (each attempt of it) gets a
 * fresh MUNGE credential, made for that call's method ({@link #payload}) and decodable by root
 * only, in the {@link #HEADER} header. The credential goes only over a transport that encrypts: one
 * read on its way is good for one call.
 *
 * <p>On a stub from {@link #attachTo}, a call's credential is begun as the call is created, so that
 * {@code munge} runs while the connection is being made rather than after it.
 */
final class MungeCredentials extends CallCredentials {
  /**
   * The header a credential goes in (ASCII: a credential is base64 in armor). Here, not in {@link
   * MungeAuthenticator}, whose logger a command would otherwise start.
   */
  static final Metadata.Key<String> HEADER =
      Metadata.Key.of("cohort-munge", Metadata.ASCII_STRING_MARSHALLER);

  /** What the credential for a call of {@code fullMethodName} carries. */
  static String payload(String fullMethodName) {
    return "cohort " + fullMethodName;
  }

  private final Munge munge;
  private final boolean dialerEncrypts;

  /** Credentials begun for calls created and not yet sent, by method, oldest first. */
  private final Map<String, Queue<CompletableFuture<String>>> ahead = new ConcurrentHashMap<>();

  private MungeCredentials(Munge munge, boolean dialerEncrypts) {
    this.munge = munge;
    this.dialerEncrypts = dialerEncrypts;
  }

  /** For a channel whose own transport must encrypt (gRPC's TLS). */
  static MungeCredentials overTls(Munge munge) {
    return new MungeCredentials(munge, false);
  }

  /**
   * For a channel through a {@link TlsDialer}: gRPC sees plain bytes, which the dialer's program
   * encrypts on the wire.
   */
  static MungeCredentials overTlsDialer(Munge munge) {
    return new MungeCredentials(munge, true);
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
    CompletableFuture<String> credential = null;
    Queue<CompletableFuture<String>> begun = ahead.get(method);
    if (begun != null) {
      credential = begun.poll();
    }
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
    return CompletableFuture.supplyAsync(() -> munge.credential(payload(method)), executor);
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
            String name = method.getFullMethodName();
            ahead
                .computeIfAbsent(name, k -> new ConcurrentLinkedQueue<>())
                .add(make(name, MungeCredentials::onItsOwnThread));
            return next.newCall(method, options);
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
