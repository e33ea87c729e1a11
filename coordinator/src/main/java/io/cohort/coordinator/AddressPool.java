package io.cohort.coordinator;

import io.cohort.common.CohortException;
import java.util.Collection;
import java.util.OptionalInt;

/**
 * The arithmetic of the coordinator's pool of vhost addresses, with no state: a pool is an IPv4
 * CIDR block, cut into aligned blocks whose size is a power of two (at least {@link #MIN_BLOCK}),
 * one per running job that spans vhosts. {@link JobNetworks} decides who holds what.
 *
 * <p>Vhost {@code i} of a job has the {@code i}-th address of its block that ends neither in .0 nor
 * in .255: such addresses are valid host addresses here (every vhost has a /32), but enough
 * software takes them for a network or a broadcast address that a job should never meet one.
 *
 * @param base the pool's first address (an int in network order, aligned to its size)
 * @param prefix the pool's prefix length
 */
record AddressPool(int base, int prefix) {
  /** The smallest block: a job of 2 vhosts costs 16 addresses, and a block is one table id. */
  static final int MIN_BLOCK = 16;

  /** Routing table of the block at the pool's base; the next granule of 16 gets the next one. */
  static final int FIRST_TABLE = 100_000;

  /** Parses "A.B.C.D/N" (N from 8 to 28, A.B.C.D aligned to it). */
  static AddressPool parse(String cidr) {
    String[] parts = cidr.split("/", -1);
    try {
      if (parts.length == 2) {
        int prefix = Integer.parseInt(parts[1]);
        int base = ipv4(parts[0]);
        if (prefix >= 8 && prefix <= 28 && (base & ~mask(prefix)) == 0) {
          return new AddressPool(base, prefix);
        }
      }
    } catch (IllegalArgumentException e) {
      // fall through to the error below
    }
    throw CohortException.invalid(
        "the vhost address pool must be an aligned IPv4 block from /8 to /28, e.g. "
            + "198.19.0.0/16; got '%s'",
        cidr);
  }

  long size() {
    return 1L << (32 - prefix);
  }

  /** Addresses of a block of {@code size} usable for vhosts wherever it is aligned in the pool. */
  static long capacity(long size) {
    // A block under 256 addresses holds at most one .0 or one .255; a larger one two per 256.
    return size < 256 ? size - 1 : size - 2 * (size / 256);
  }

  /** Size of the block a job of {@code vhosts} needs (a power of two, at least MIN_BLOCK). */
  static long blockSize(int vhosts) {
    long size = MIN_BLOCK;
    while (capacity(size) < vhosts) {
      size *= 2;
    }
    return size;
  }

  /**
   * The first block of {@code size} in the pool that overlaps none of {@code taken} (and, if {@code
   * avoid} allows one, none of {@code avoid} either): its first address.
   */
  OptionalInt firstFree(long size, Collection<Block> taken, Collection<Block> avoid) {
    OptionalInt clean = firstFree(size, taken, avoid, true);
    return clean.isPresent() ? clean : firstFree(size, taken, avoid, false);
  }

  private OptionalInt firstFree(
      long size, Collection<Block> taken, Collection<Block> avoid, boolean avoiding) {
    for (long off = 0; off + size <= size(); ) {
      Block candidate = new Block((int) (base + off), size);
      long next = off + size;
      boolean free = true;
      for (Block b : taken) {
        if (b.overlaps(candidate)) {
          free = false;
          next = Math.max(next, align(b.endOffset(base), size));
        }
      }
      for (Block b : avoiding ? avoid : java.util.List.<Block>of()) {
        if (b.overlaps(candidate)) {
          free = false;
          next = Math.max(next, align(b.endOffset(base), size));
        }
      }
      if (free) {
        return OptionalInt.of(candidate.start());
      }
      off = next;
    }
    return OptionalInt.empty();
  }

  private static long align(long offset, long size) {
    return (offset + size - 1) / size * size;
  }

  /** Whether {@code b} lies inside the pool. */
  boolean contains(Block b) {
    long off = Integer.toUnsignedLong(b.start()) - Integer.toUnsignedLong(base);
    return off >= 0 && off + b.size() <= size();
  }

  /** The routing table of a block of this pool: one per granule of {@link #MIN_BLOCK}. */
  int table(Block b) {
    return FIRST_TABLE
        + (int) ((Integer.toUnsignedLong(b.start()) - Integer.toUnsignedLong(base)) / MIN_BLOCK);
  }

  @Override
  public String toString() {
    return dotted(base) + "/" + prefix;
  }

  /** An aligned block of addresses. */
  record Block(int start, long size) {
    static Block parse(String cidr) {
      String[] parts = cidr.split("/", -1);
      return new Block(ipv4(parts[0]), 1L << (32 - Integer.parseInt(parts[1])));
    }

    boolean overlaps(Block o) {
      long a = Integer.toUnsignedLong(start);
      long b = Integer.toUnsignedLong(o.start);
      return a < b + o.size && b < a + size;
    }

    long endOffset(int poolBase) {
      return Integer.toUnsignedLong(start) + size - Integer.toUnsignedLong(poolBase);
    }

    /** The address of vhost {@code index} (see the class comment). */
    String address(int index) {
      int seen = 0;
      for (long off = 0; off < size; off++) {
        int a = (int) (start + off);
        int last = a & 0xff;
        if (last != 0 && last != 255 && seen++ == index) {
          return dotted(a);
        }
      }
      throw new IllegalArgumentException("block " + this + " has no vhost " + index);
    }

    /** How many addresses of the block end neither in .0 nor in .255. */
    long usable() {
      long n = 0;
      for (long off = 0; off < size; off++) {
        int last = (int) (start + off) & 0xff;
        if (last != 0 && last != 255) {
          n++;
        }
      }
      return n;
    }

    /** The block's last usable address: the agents' (markers'), never a vhost's. */
    String markerAddress() {
      return address((int) usable() - 1);
    }

    /** The smallest block of at least MIN_BLOCK addresses holding every one of {@code addrs}. */
    static Block enclosing(Collection<String> addrs) {
      int first = ipv4(addrs.iterator().next());
      for (long size = MIN_BLOCK; size <= 1L << 32; size *= 2) {
        Block b = new Block((int) (first & ~(size - 1)), size);
        if (addrs.stream().allMatch(a -> b.overlaps(new Block(ipv4(a), 1)))) {
          return b;
        }
      }
      throw new IllegalArgumentException("no block holds " + addrs);
    }

    @Override
    public String toString() {
      return dotted(start) + "/" + (32 - Long.numberOfTrailingZeros(size));
    }
  }

  private static int mask(int prefix) {
    return prefix == 0 ? 0 : -1 << (32 - prefix);
  }

  static int ipv4(String dotted) {
    String[] p = dotted.split("\\.", -1);
    if (p.length != 4) {
      throw new IllegalArgumentException("not an IPv4 address: " + dotted);
    }
    int a = 0;
    for (String octet : p) {
      int v = Integer.parseInt(octet);
      if (v < 0 || v > 255) {
        throw new IllegalArgumentException("not an IPv4 address: " + dotted);
      }
      a = (a << 8) | v;
    }
    return a;
  }

  static String dotted(int a) {
    return (a >>> 24) + "." + ((a >> 16) & 0xff) + "." + ((a >> 8) & 0xff) + "." + (a & 0xff);
  }
}
