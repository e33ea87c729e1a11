package io.cohort.drain;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.AbstractByteBuf;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import java.lang.reflect.Field;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test class if Netty's leak detector reports a leaked ByteBuf while it ran.
 *
 * <p>Surefire runs with {@code -Dio.netty.leakDetection.level=paranoid} (every buffer tracked). A
 * listener on the detector all ByteBufs share collects reports; after the class, a few GCs plus
 * allocations (the detector checks for collected-but-unreleased buffers when a buffer is allocated)
 * flush out the leaks of buffers that became garbage.
 */
final class NoLeaks implements BeforeAllCallback, AfterAllCallback {

  private static final List<String> leaks = new CopyOnWriteArrayList<>();
  private static volatile boolean installed;

  @Override
  public void beforeAll(ExtensionContext context) throws Exception {
    install();
    leaks.clear();
  }

  @Override
  public void afterAll(ExtensionContext context) {
    for (int round = 0; round < 8 && leaks.isEmpty(); round++) {
      System.gc();
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
      for (int i = 0; i < 16; i++) {
        ByteBuf probe = ByteBufAllocator.DEFAULT.buffer(16);
        probe.release();
      }
    }
    assertTrue(leaks.isEmpty(), "ByteBuf leaks:\n" + String.join("\n---\n", leaks));
  }

  private static synchronized void install() throws ReflectiveOperationException {
    assertEquals(
        ResourceLeakDetector.Level.PARANOID,
        ResourceLeakDetector.getLevel(),
        "run with -Dio.netty.leakDetection.level=paranoid (surefire argLine)");
    if (installed) {
      return;
    }
    // The detector every ByteBuf allocator uses; package-private in Netty, reachable
    // reflectively on the class path.
    Field f = AbstractByteBuf.class.getDeclaredField("leakDetector");
    f.setAccessible(true);
    ResourceLeakDetector<?> detector = (ResourceLeakDetector<?>) f.get(null);
    detector.setLeakListener((type, records) -> leaks.add(type + ": " + records));
    installed = true;
  }
}
