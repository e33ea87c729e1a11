package io.cohort.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;

/** Samples a process's resident memory every 20 ms while running, keeping the peak. */
final class Rss implements AutoCloseable {
  private final long pid;
  private final AtomicLong peakKib = new AtomicLong();
  private final Thread sampler;
  private volatile boolean stop;

  Rss(long pid) {
    this.pid = pid;
    this.sampler =
        new Thread(
            () -> {
              while (!stop) {
                peakKib.accumulateAndGet(kib(pid), Math::max);
                try {
                  Thread.sleep(20);
                } catch (InterruptedException e) {
                  return;
                }
              }
            },
            "rss-" + pid);
    sampler.setDaemon(true);
    sampler.start();
  }

  /** Resident memory of {@code pid} now, KiB (0 if it is gone). */
  static long kib(long pid) {
    try {
      return Files.readAllLines(Path.of("/proc/" + pid + "/status")).stream()
          .filter(l -> l.startsWith("VmRSS:"))
          .map(l -> Long.parseLong(l.replaceAll("\\D", "")))
          .findFirst()
          .orElse(0L);
    } catch (IOException e) {
      return 0;
    }
  }

  /** The peak seen so far, MiB. */
  double peakMib() {
    return Math.max(peakKib.get(), kib(pid)) / 1024.0;
  }

  @Override
  public void close() {
    stop = true;
    sampler.interrupt();
  }
}
