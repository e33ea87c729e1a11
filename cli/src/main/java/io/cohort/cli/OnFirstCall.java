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
 * A service built on its first call rather than with its server. A failure to build it is that
 * call's answer, with its message and status (INVALID_ARGUMENT, FAILED_PRECONDITION...), and the
 * next call tries again.
 */
final class OnFirstCall extends HandlerRegistry {
  private final String name;
  private final Supplier<ServiceDescriptor> descriptor;
  private final Supplier<ServerServiceDefinition> build;
  private ServerServiceDefinition service; // guarded by this

  /**
   * {@code descriptor} is called only when {@code build} fails: it loads every message class of the
   * service, which a read-only command would not otherwise load.
   */
  OnFirstCall(
      String name,
      Supplier<ServiceDescriptor> descriptor,
      Supplier<ServerServiceDefinition> build) {
    this.name = name;
    this.descriptor = descriptor;
    this.build = build;
  }

  @Override
  public ServerMethodDefinition<?, ?> lookupMethod(String method, String authority) {
    if (!name.equals(MethodDescriptor.extractFullServiceName(method))) {
      return null; // not this service's: UNIMPLEMENTED, as from any server
    }
    try {
      return service().getMethod(method);
    } catch (RuntimeException e) {
      return descriptor.get().getMethods().stream()
          .filter(m -> m.getFullMethodName().equals(method))
          .findFirst()
          .map(m -> failing(m, GrpcErrors.toStatus(e).getStatus()))
          .orElse(null);
    }
  }

  private synchronized ServerServiceDefinition service() {
    if (service == null) {
      service = build.get();
    }
    return service;
  }

  private static <Q, R> ServerMethodDefinition<Q, R> failing(
      MethodDescriptor<Q, R> method, Status status) {
    ServerCallHandler<Q, R> handler =
        (call, headers) -> {
          call.close(status, new Metadata());
          return new ServerCall.Listener<>() {};
        };
    return ServerMethodDefinition.create(method, handler);
  }
}
