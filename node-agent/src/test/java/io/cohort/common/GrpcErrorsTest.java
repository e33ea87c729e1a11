package io.cohort.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.junit.jupiter.api.Test;

/** A failure a Cohort service answers is told apart from one of the transport. */
class GrpcErrorsTest {
  @Test
  void anAnswerOfTheServiceIsMarkedAndATransportFailureIsNot() {
    StatusRuntimeException answered =
        GrpcErrors.toStatus(
            new CohortException(CohortException.Kind.UNAVAILABLE, "node n1 is down"));
    assertTrue(GrpcErrors.answered(answered));
    assertEquals(Status.Code.UNAVAILABLE, answered.getStatus().getCode());
    assertTrue(GrpcErrors.answered(GrpcErrors.toStatus(new IllegalStateException("bug"))));
    assertFalse(
        GrpcErrors.answered(
            Status.UNAVAILABLE
                .withDescription("Connection closed after GOAWAY")
                .asRuntimeException()));
  }

  @Test
  void aTransportFailureIsToldAsOneAndTheServicesOwnWordsAreKept() {
    CohortException lost =
        GrpcErrors.fromStatus(
            Status.UNAVAILABLE.withDescription("io exception").asRuntimeException(), "node n2");
    assertEquals(CohortException.Kind.UNAVAILABLE, lost.kind());
    assertEquals(
        "node n2 cannot be reached or stopped answering (io exception)", lost.getMessage());
    CohortException closed =
        GrpcErrors.fromStatus(
            Status.INTERNAL
                .withDescription("Network closed for unknown reason")
                .withCause(new java.io.IOException("reset"))
                .asRuntimeException(),
            "node n2");
    assertEquals(CohortException.Kind.UNAVAILABLE, closed.kind());
    assertTrue(closed.getMessage().startsWith("node n2 cannot be reached"), closed.getMessage());
    CohortException slow =
        GrpcErrors.fromStatus(Status.DEADLINE_EXCEEDED.asRuntimeException(), "node n2");
    assertTrue(slow.getMessage().startsWith("node n2 did not answer in time"), slow.getMessage());
    CohortException said =
        GrpcErrors.fromStatus(
            GrpcErrors.toStatus(
                new CohortException(CohortException.Kind.UNAVAILABLE, "node n1 is down")),
            "node n2");
    assertEquals("node n1 is down", said.getMessage(), "the service's answer is told as it is");
  }
}
