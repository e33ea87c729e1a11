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
}
