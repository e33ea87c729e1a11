package io.cohort.bench;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What the figures were measured on. */
final class Machine {
  private Machine() {}

  static JsonObject describe(Cli cli) {
    JsonObject m = new JsonObject();
    m.addProperty("cpu", cpuModel());
    m.addProperty("cores", Runtime.getRuntime().availableProcessors());
    m.addProperty("memory_gib", Math.round(memKib() / 1048576.0 * 10) / 10.0);
    m.addProperty("kernel", cli.must("uname", "-r").out().strip());
    m.addProperty("os", osName());
    m.addProperty(
        "disk",
        cli.must("findmnt", "-n", "-o", "SOURCE,FSTYPE", "--target", cli.home.toString())
            .out()
            .strip());
    m.addProperty(
        "criu",
        cli.must("/opt/cohort/bin/criu", "--version").out().lines().findFirst().orElse("").strip());
    m.addProperty(
        "open_mpi",
        cli.must("mpirun", "--allow-run-as-root", "--version")
            .out()
            .lines()
            .findFirst()
            .orElse("")
            .strip());
    m.addProperty(
        "java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
    return m;
  }

  private static String cpuModel() {
    return read("/proc/cpuinfo")
        .lines()
        .filter(l -> l.startsWith("model name"))
        .map(l -> l.substring(l.indexOf(':') + 1).strip())
        .findFirst()
        .orElse("unknown");
  }

  private static long memKib() {
    return read("/proc/meminfo")
        .lines()
        .filter(l -> l.startsWith("MemTotal:"))
        .map(l -> Long.parseLong(l.replaceAll("\\D", "")))
        .findFirst()
        .orElse(0L);
  }

  private static String osName() {
    return read("/etc/os-release")
        .lines()
        .filter(l -> l.startsWith("PRETTY_NAME="))
        .map(l -> l.substring(13).replace("\"", ""))
        .findFirst()
        .orElse("unknown");
  }

  private static String read(String f) {
    try {
      return Files.readString(Path.of(f));
    } catch (IOException e) {
      return "";
    }
  }
}
