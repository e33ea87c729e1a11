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

  void lines(String file, String title, String xTitle, String yTitle, JsonArray rows,
      Function<JsonObject, Double> x, boolean logX, boolean logY, List<Series> series)
      throws IOException {
    XYChart c = new XYChartBuilder().width(900).height(560).title(title).xAxisTitle(xTitle)
        .yAxisTitle(yTitle).build();
    c.getStyler().setXAxisLogarithmic(logX).setYAxisLogarithmic(logY)
        .setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNW)
        .setMarkerSize(7);
    double[] xs = rows.asList().stream().mapToDouble(e -> x.apply(e.getAsJsonObject())).toArray();
    for (Series s : series) {
      double[] ys = rows.asList().stream().mapToDouble(e -> s.y().apply(e.getAsJsonObject()))
          .toArray();
      c.addSeries(s.name(), xs, ys).setMarker(SeriesMarkers.CIRCLE);
    }
    BitmapEncoder.saveBitmap(c, dir.resolve(file).toString(), BitmapEncoder.BitmapFormat.PNG);
  }

  /** The median of a {median,min,max} field. */
  static double median(JsonObject row, String field) {
    JsonElement e = row.get(field);
    return e.isJsonObject() ? e.getAsJsonObject().get("median").getAsDouble() : e.getAsDouble();
  }
}
