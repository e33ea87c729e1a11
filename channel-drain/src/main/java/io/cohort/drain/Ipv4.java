package io.cohort.drain;

/** IPv4 addresses as {@code int}s in network byte order (198.19.0.1 is {@code 0xC6130001}). */
public final class Ipv4 {

  private Ipv4() {}

  /** Dotted-quad text of {@code address}. */
  public static String format(int address) {
    return ((address >>> 24) & 0xFF)
        + "."
        + ((address >>> 16) & 0xFF)
        + "."
        + ((address >>> 8) & 0xFF)
        + "."
        + (address & 0xFF);
  }

  /** Parses dotted-quad text ("198.19.0.1"); throws IllegalArgumentException otherwise. */
  public static int parse(String text) {
    String[] parts = text.split("\\.", -1);
    if (parts.length != 4) {
      throw new IllegalArgumentException("not an IPv4 address: '" + text + "'");
    }
    int address = 0;
    for (String part : parts) {
      int octet;
      try {
        octet = Integer.parseInt(part);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("not an IPv4 address: '" + text + "'");
      }
      if (part.isEmpty() || octet < 0 || octet > 255) {
        throw new IllegalArgumentException("not an IPv4 address: '" + text + "'");
      }
      address = (address << 8) | octet;
    }
    return address;
  }
}
