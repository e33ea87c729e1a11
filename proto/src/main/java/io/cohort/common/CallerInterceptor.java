package io.cohort.common;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;

/**
 * Puts the {@link Caller} in each call's {@link Context}, from the transport only: the attribute
 * the transport set when the connection was accepted ({@link Caller#TRANSPORT_ATTR}), else the
 * fallback this server was built with. Nothing in the request's headers or body counts.
 */
public final class CallerInterceptor implements ServerInterceptor {
  private final Caller fallback;
  private final String refusal;

  private CallerInterceptor(Caller fallback, String refusal) {
    this.fallback = fallback;
    this.refusal = refusal;
  }

  /**
   * For a server whose transport names each caller; a connection it did not name is refused with
   * UNAUTHENTICATED and {@code refusal}, which says what to do.
   */
  public static CallerInterceptor fromTransport(String refusal) {
    return new CallerInterceptor(null, refusal);
  }

  /**
   * For a server whose every caller is {@code caller}, unless its transport names another: an
   * in-process server (the embedded mode, run by root only), or a TCP port an operator chose to
   * trust.
   */
  public static CallerInterceptor fixed(Caller caller) {
    return new CallerInterceptor(caller, null);
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    Caller caller = call.getAttributes().get(Caller.TRANSPORT_ATTR);
    if (caller == null) {
      caller = fallback;
    }
    if (caller == null) {
      call.close(Status.UNAUTHENTICATED.withDescription(refusal), new Metadata());
      return new ServerCall.Listener<>() {};
    }
    return Contexts.interceptCall(
        Context.current().withValue(Caller.CONTEXT_KEY, caller), call, headers, next);
  }
}
