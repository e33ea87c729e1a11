package io.cohort.cli;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.ImagePolicy;
import java.time.Duration;

/**
 * Option values as people type them on a command line: sizes (50M, 1G), durations (90s, 5m, 2h),
 * image policies (partner, none).
 */
final class OptionValues {
  private OptionValues() {}

  /** An image policy by its lower-case name. */
  static ImagePolicy imagePolicy(String option, String text) {
    return switch (text.strip().toLowerCase(java.util.Locale.ROOT)) {
      case "partner" -> ImagePolicy.IMAGE_POLICY_PARTNER;
      case "none" -> ImagePolicy.IMAGE_POLICY_NONE;
      default -> throw CohortException.invalid("%s takes partner or none, got '%s'", option, text);
    };
  }

  /** Bytes from "N", "NK", "NM" or "NG" (powers of 1024). */
  static long bytes(String option, String text) {
    String t = text.strip().toUpperCase(java.util.Locale.ROOT);
    long unit = 1;
    if (t.endsWith("K") || t.endsWith("M") || t.endsWith("G")) {
      unit =
          switch (t.charAt(t.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            default -> 1L << 30;
          };
      t = t.substring(0, t.length() - 1);
    }
    try {
      long n = Long.parseLong(t);
      if (n < 0) {
        throw new NumberFormatException();
      }
      return Math.multiplyExact(n, unit);
    } catch (NumberFormatException | ArithmeticException e) {
      throw CohortException.invalid(
          "%s takes a size such as 50M or 1G (bytes, K, M, G), got '%s'", option, text);
    }
  }

  /** A duration from "N" (seconds), "Ns", "Nm" or "Nh". */
  static Duration duration(String option, String text) {
    String t = text.strip().toLowerCase(java.util.Locale.ROOT);
    long unit = 1;
    if (t.endsWith("s") || t.endsWith("m") || t.endsWith("h")) {
      unit =
          switch (t.charAt(t.length() - 1)) {
            case 's' -> 1;
            case 'm' -> 60;
            default -> 3600;
          };
      t = t.substring(0, t.length() - 1);
    }
    try {
      long n = Long.parseLong(t);
      if (n <= 0) {
        throw new NumberFormatException();
      }
      return Duration.ofSeconds(Math.multiplyExact(n, unit));
    } catch (NumberFormatException | ArithmeticException e) {
      throw CohortException.invalid(
          "%s takes a positive duration such as 90s, 5m or 2h, got '%s'", option, text);
    }
  }
}
