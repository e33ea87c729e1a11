package io.cohort.bench;

import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;

/** Repeated measurements of one quantity: median, minimum and maximum. */
final class Stats {
  private final List<Double> values = new ArrayList<>();

  void add(double v) {
    values.add(v);
  }

  int n() {
    return values.size();
  }

  double median() {
    List<Double> s = values.stream().sorted().toList();
    int n = s.size();
    return n == 0 ? Double.NaN : n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
  }

  double min() {
    return values.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
  }

  double max() {
    return values.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
  }

  JsonObject json() {
    JsonObject o = new JsonObject();
    o.addProperty("median", round(median()));
    o.addProperty("min", round(min()));
    o.addProperty("max", round(max()));
    o.addProperty("n", values.size());
    return o;
  }

  /** "median (min–max)" for a table. */
  String cell() {
    return values.size() == 1
        ? fmt(median())
        : fmt(median()) + " (" + fmt(min()) + "–" + fmt(max()) + ")";
  }

  static String fmt(double v) {
    return v >= 100
        ? String.format("%.0f", v)
        : v >= 10 ? String.format("%.1f", v) : String.format("%.2f", v);
  }

  private static double round(double v) {
    return Math.round(v * 100) / 100.0;
  }
}
