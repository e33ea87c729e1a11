package io.cohort.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Function;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** The PNG plots of a benchmark run (XChart, headless). */
final class Plots {
  private final Path dir;

  Plots(Path dir) {
    System.setProperty("java.awt.headless", "true");
    this.dir = dir;
  }

  /** One line per series over the rows of {@code rows}. */
  record Series(String name, Function<JsonObject, Double> y) {}

  void lines(
      String file,
      String title,
      String xTitle,
      String yTitle,
      JsonArray rows,
      Function<JsonObject, Double> x,
      boolean logX,
      boolean logY,
      List<Series> series)
      throws IOException {
    XYChart c =
        new XYChartBuilder()
            .width(900)
            .height(560)
            .title(title)
            .xAxisTitle(xTitle)
            .yAxisTitle(yTitle)
            .build();
    c.getStyler()
        .setXAxisLogarithmic(logX)
        .setYAxisLogarithmic(logY)
        .setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNW)
        .setMarkerSize(7);
    for (Series s : series) {
      // A logarithmic axis cannot show 0 (e.g. a throughput printed as 0.0): leave such points out.
      List<double[]> points =
          rows.asList().stream()
              .map(JsonElement::getAsJsonObject)
              .map(o -> new double[] {x.apply(o), s.y().apply(o)})
              .filter(p -> (!logX || p[0] > 0) && (!logY || p[1] > 0))
              .toList();
      if (points.isEmpty()) {
        continue;
      }
      c.addSeries(
              s.name(),
              points.stream().mapToDouble(p -> p[0]).toArray(),
              points.stream().mapToDouble(p -> p[1]).toArray())
          .setMarker(SeriesMarkers.CIRCLE);
    }
    BitmapEncoder.saveBitmap(c, dir.resolve(file).toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  /** The median of a {median,min,max} field. */
  static double median(JsonObject row, String field) {
    return stat(row, field, "median");
  }

  static double min(JsonObject row, String field) {
    return stat(row, field, "min");
  }

  /** One statistic of a repeated figure ({@link Stats#json}), or a figure measured once. */
  private static double stat(JsonObject row, String field, String which) {
    JsonElement e = row.get(field);
    return e.isJsonObject() ? e.getAsJsonObject().get(which).getAsDouble() : e.getAsDouble();
  }
}
