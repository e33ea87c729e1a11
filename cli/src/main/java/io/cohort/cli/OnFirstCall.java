package io.cohort.cli;

import io.cohort.common.GrpcErrors;
import io.grpc.HandlerRegistry;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import java.util.function.Supplier;

/**
 * A service built on its first call rather than with its server. A failure to build it is
 * that call's answer, with its message and status (INVALID_ARGUMENT, FAILED_PRECONDITION...),
 * and the next call tries again.
 */
final class OnFirstCall extends HandlerRegistry {
  private final ServiceDescriptor descriptor;
  private final Supplier<ServerServiceDefinition> build;
  private ServerServiceDefinition service; // guarded by this

  OnFirstCall(ServiceDescriptor descriptor, Supplier<ServerServiceDefinition> build) {
    this.descriptor = descriptor;
    this.build = build;
  }

  @Override
  public ServerMethodDefinition<?, ?> lookupMethod(String method, String authority) {
    MethodDescriptor<?, ?> known = descriptor.getMethods().stream()
        .filter(m -> m.getFullMethodName().equals(method)).findFirst().orElse(null);
    if (known == null) {
      return null; // not this service's: UNIMPLEMENTED, as from any server
    }
    try {
      return service().getMethod(method);
    } catch (RuntimeException e) {
      return failing(known, GrpcErrors.toStatus(e).getStatus());
    }
  }

  private synchronized ServerServiceDefinition service() {
    if (service == null) {
      service = build.get();
    }
    return service;
  }

  private static <Q, R> ServerMethodDefinition<Q, R> failing(MethodDescriptor<Q, R> method,
      Status status) {
    ServerCallHandler<Q, R> handler = (call, headers) -> {
      call.close(status, new Metadata());
      return new ServerCall.Listener<>() {};
    };
    return ServerMethodDefinition.create(method, handler);
  }
}
