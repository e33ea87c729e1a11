package io.cohort.cli;

import io.cohort.common.CohortException;
import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.util.concurrent.Executor;

/**
 * Proves who the user is to a coordinator reached over TCP: each call (each attempt of it) gets a
 * fresh MUNGE credential, made for that call's method ({@link MungeAuthenticator#payload}) and
 * decodable by root only, in the {@link MungeAuthenticator#HEADER} header. The credential goes only
 * over a transport that encrypts: one read on its way is good for one call.
 */
final class MungeCredentials extends CallCredentials {
  private final Munge munge;

  MungeCredentials(Munge munge) {
    this.munge = munge;
  }

  @Override
  public void applyRequestMetadata(
      RequestInfo info, Executor appExecutor, MetadataApplier applier) {
    if (info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY) {
      applier.fail(
          Status.UNAUTHENTICATED.withDescription(
              "a MUNGE credential is sent only over TLS, and this connection to "
                  + info.getAuthority()
                  + " is not encrypted"));
      return;
    }
    String method = info.getMethodDescriptor().getFullMethodName();
    // `munge` is a process: off the transport's thread.
    appExecutor.execute(
        () -> {
          Metadata headers = new Metadata();
          try {
            headers.put(
                MungeAuthenticator.HEADER, munge.credential(MungeAuthenticator.payload(method)));
          } catch (CohortException e) {
            applier.fail(Status.UNAUTHENTICATED.withDescription(e.getMessage()));
            return;
          }
          applier.apply(headers);
        });
  }
}
