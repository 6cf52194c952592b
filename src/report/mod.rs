//! Plots drawn from a results folder's summary.csv with plotters: one SVG and one
//! PNG per `[[plot]]` entry, mean with 95% confidence bars, one line per series.
//! Text is rendered with the DejaVu Sans font shipped in this repository, so plots
//! look the same on a host without any fonts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::metrics::CORE_METRICS;
use crate::protocols::PROTOCOLS;
use crate::scenario::{KEY_LABELS, Plan, PlotSpec, numeric};

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The font is compiled in and known to be valid.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Whether each value of the first column fixes the value of the second, over the
/// rows given as (first, second) pairs: a zip partner of x, or a protocol's own
/// parameter under the protocol's name.
pub fn determines<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    let mut pairs: Vec<(&str, &str)> = pairs.collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.windows(2).all(|w| w[0].0 != w[1].0)
}

/// Axis label with its unit: the title a column or a swept key declares (the core
/// metrics, the protocols' own columns and `protocol.<key>` parameters, the
/// scenario's keys), or the name in words.
pub fn label(name: &str) -> String {
    let core = CORE_METRICS.iter().chain(KEY_LABELS.iter()).chain(crate::compute::COLUMNS.iter());
    let own = PROTOCOLS.iter().flat_map(|p| p.extra_columns.iter());
    if let Some(c) = core.chain(own).find(|c| c.name == name) {
        return c.label.to_string();
    }
    let param = name
        .strip_prefix("protocol.")
        .and_then(|key| PROTOCOLS.iter().flat_map(|p| p.params.iter()).find(|d| d.key == key && !d.label.is_empty()));
    param.map_or_else(|| name.strip_prefix("protocol.").unwrap_or(name).replace('_', " "), |d| d.label.to_string())
}
/// The scenario's `[[plot]]` entries, or, if it has none, the four headline metrics
/// against the first numeric sweep key, one line per value of the next key.
pub fn plots_of(plan: &Plan) -> Vec<PlotSpec> {
    if !plan.plots.is_empty() {
        return plan.plots.clone();
    }
    // The x axis: the numeric column with the most distinct values (more than one).
    // The series: another column that varies and is not a function of x (a zip
    // partner of x would give every line a single point).
    let values = |c: usize| plan.points.iter().map(move |p| p.params[c].1.as_str());
    let distinct: Vec<usize> =
        (0..plan.columns.len()).map(|c| values(c).collect::<std::collections::BTreeSet<_>>().len()).collect();
    let numbers = |c: usize| values(c).map(numeric).collect::<Option<Vec<f64>>>();
    let Some((x, xs)) = (0..plan.columns.len())
        .filter(|&c| distinct[c] > 1)
        .filter_map(|c| Some((c, numbers(c)?)))
        .max_by_key(|(c, _)| (distinct[*c], std::cmp::Reverse(*c)))
    else {
        return Vec::new();
    };
    let series = (0..plan.columns.len()).find(|&c| c != x && distinct[c] > 1 && !determines(values(x).zip(values(c))));
    // Over two decades or more of positive values, x goes on a log axis.
    let (lo, hi) = xs.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let logx = lo > 0.0 && hi / lo >= 100.0;
    ["success_rate", "first_hit_latency_p95_ms", "messages_per_query", "max_node_load"]
        .iter()
        .map(|y| PlotSpec {
            x: plan.columns[x].clone(),
            y: y.to_string(),
            series: series.map(|c| plan.columns[c].clone()),
            logx,
            logy: false,
            title: None,
        })
        .collect()
}

struct Series {
    label: String,
    /// Dots and confidence bars at each point (summaries), or a bare line (CDFs).
    markers: bool,
    /// (x, mean, ci low, ci high)
    points: Vec<(f64, f64, f64, f64)>,
}

/// Draws every plot of `plots` from `dir/summary.csv` into `dir/plots/`.
pub fn draw_all(dir: &Path, plots: &[PlotSpec]) -> Result<Vec<PathBuf>> {
    register_font();
    let summary = dir.join("summary.csv");
    let mut reader = csv::Reader::from_path(&summary).with_context(|| format!("reading {}", summary.display()))?;
    let header: Vec<String> = reader.headers()?.iter().map(String::from).collect();
    let rows: Vec<Vec<String>> =
        reader.records().map(|r| r.map(|r| r.iter().map(String::from).collect())).collect::<Result<_, _>>()?;
    fs_create(&dir.join("plots"))?;
    let mut written = Vec::new();
    let mut charts: Vec<(&PlotSpec, String, Vec<Series>)> = Vec::new();
    for spec in plots {
        let series = lines(&header, &rows, spec, &summary)?;
        let stem = format!("{}_vs_{}", spec.y, spec.x.replace('.', "_"));
        let title = spec.title.clone().unwrap_or_else(|| format!("{} vs {}", label(&spec.y), label(&spec.x)));
        written.extend(render(dir, &stem, spec, &title, &series)?);
        charts.push((spec, title, series));
    }
    if charts.len() > 1 {
        written.extend(render_overview(dir, &charts)?);
    }
    written.extend(draw_distributions(dir)?);
    Ok(written)
}

/// The lines of one `[[plot]]` from summary.csv's `header` and `rows` (read from
/// `path`): one per value of the series column and of every other parameter that
/// separates points, x excepted.
fn lines(header: &[String], rows: &[Vec<String>], spec: &PlotSpec, path: &Path) -> Result<Vec<Series>> {
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| anyhow!("{} has no column {name}", path.display()))
    };
    let (metric, mean, lo, hi) = (col("metric")?, col("mean")?, col("ci95_low")?, col("ci95_high")?);
    let params: Vec<usize> = (2..metric).collect();
    let x = col(&spec.x)?;
    let series_col = spec.series.as_deref().map(col).transpose()?;
    let mut groups: BTreeMap<Vec<String>, Series> = BTreeMap::new();
    let mut order: Vec<Vec<String>> = Vec::new();
    let selected: Vec<&Vec<String>> = rows.iter().filter(|r| r[metric] == spec.y).collect();
    // Other parameters name a line only where they take more than one value (unset
    // counts as one: a flood without `ring` is not the expanding ring), and not when
    // they move with x (keys zipped with it): those are points on a line.
    let follows = |by: usize, c: usize| determines(selected.iter().map(|r| (r[by].as_str(), r[c].as_str())));
    let mut varying: Vec<usize> = Vec::new();
    for c in params.iter().copied().filter(|&c| c != x && Some(c) != series_col) {
        let mut seen: Vec<&str> = selected.iter().map(|r| r[c].as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        // A column fixed by the series value or by a column already naming the lines
        // (a protocol's own parameter, a topology's under its kind) adds nothing.
        let fixed =
            follows(x, c) || series_col.is_some_and(|s| follows(s, c)) || varying.iter().any(|&d| follows(d, c));
        if seen.len() > 1 && !fixed {
            varying.push(c);
        }
    }
    // A point that leaves x unset (a protocol without that parameter) has no place on the plot.
    for row in selected.into_iter().filter(|r| !r[x].is_empty()) {
        let Some(xv) = numeric(&row[x]) else {
            bail!("plot of {} against {}: x value {:?} is not a number", spec.y, spec.x, row[x])
        };
        let Ok(m) = row[mean].parse::<f64>() else {
            continue;
        };
        let l = row[lo].parse::<f64>().unwrap_or(m);
        let h = row[hi].parse::<f64>().unwrap_or(m);
        // One line per combination of the other parameters, the series key first.
        // A bare number says nothing on its own: name its column ("protocol.ttl=4").
        let mut key: Vec<String> = series_col
            .map(|c| if numeric(&row[c]).is_some() { format!("{}={}", header[c], row[c]) } else { row[c].clone() })
            .into_iter()
            .collect();
        key.extend(varying.iter().filter(|&&c| !row[c].is_empty()).map(|&c| format!("{}={}", header[c], row[c])));
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        let label = key.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join(", ");
        groups
            .entry(key)
            .or_insert_with(|| Series { label, markers: true, points: Vec::new() })
            .points
            .push((xv, m, l, h));
    }
    let mut series: Vec<Series> = order.into_iter().filter_map(|k| groups.remove(&k)).collect();
    // A t interval over few replicates can reach past what the metric can take:
    // bars stop at 0 for a metric whose means are all non-negative, and at 1 for
    // a rate (summary.csv keeps the intervals as computed).
    let means = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let floor = if means().all(|m| m >= 0.0) { 0.0 } else { f64::NEG_INFINITY };
    let ceiling = if spec.y.ends_with("_rate") && means().all(|m| m <= 1.0) { 1.0 } else { f64::INFINITY };
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        for p in &mut s.points {
            (p.2, p.3) = (p.2.max(floor), p.3.min(ceiling));
        }
    }
    Ok(series)
}

/// All of a scenario's plots tiled two to a row in one figure, `plots/overview.*`:
/// the side-by-side comparison a paper prints as one figure.
fn render_overview(dir: &Path, charts: &[(&PlotSpec, String, Vec<Series>)]) -> Result<[PathBuf; 2]> {
    let cols = 2;
    let rows = charts.len().div_ceil(cols);
    let svg = dir.join("plots").join("overview.svg");
    let png = dir.join("plots").join("overview.png");
    macro_rules! tiles {
        ($backend:expr, $path:expr) => {{
            let root = $backend.into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow!("drawing {}: {e}", $path.display()))?;
            for (area, (spec, title, series)) in root.split_evenly((rows, cols)).iter().zip(charts) {
                chart(area, spec, title, series)?;
            }
            root.present().map_err(|e| anyhow!("drawing {}: {e}", $path.display()))?;
        }};
    }
    tiles!(SVGBackend::new(&svg, (800 * cols as u32, 560 * rows as u32)), svg);
    tiles!(BitMapBackend::new(&png, (1200 * cols as u32, 840 * rows as u32)), png);
    Ok([svg, png])
}

/// CDF plots from distributions.csv: first-hit latency, and the per-node load that
/// shows hot spots (a central index stands out as a lone node at the far right).
/// Quantiles are averaged over replicates; at most ten sweep points are drawn.
fn draw_distributions(dir: &Path) -> Result<Vec<PathBuf>> {
    let path = dir.join("distributions.csv");
    let runs = dir.join("runs.csv");
    if !path.exists() || !runs.exists() {
        return Ok(Vec::new());
    }
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    {
        let mut r = csv::Reader::from_path(&runs)?;
        let h: Vec<String> = r.headers()?.iter().map(String::from).collect();
        let rep = h.iter().position(|c| c == "replicate").unwrap_or(h.len());
        for row in r.records() {
            let row = row?;
            // A bare number says nothing on its own: name its key ("ttl=4"), as the
            // summary plots do.
            let params: Vec<String> = (2..rep)
                .filter_map(|i| Some((h.get(i)?, row.get(i)?)))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| {
                    if numeric(v).is_some() && !v.contains('/') {
                        format!("{}={v}", k.rsplit('.').next().unwrap_or(k))
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            let label = if params.is_empty() { format!("point {}", &row[1]) } else { params.join(", ") };
            labels.entry(row[1].to_string()).or_insert(label);
        }
    }
    // (distribution, point) -> p -> (sum, count)
    let mut acc: BTreeMap<(String, usize), BTreeMap<u32, (f64, f64)>> = BTreeMap::new();
    let mut r = csv::Reader::from_path(&path)?;
    for row in r.records() {
        let row = row?;
        let (Ok(point), Ok(p), Ok(v)) = (row[1].parse::<usize>(), row[4].parse::<f64>(), row[5].parse::<f64>()) else {
            continue;
        };
        let e = acc
            .entry((row[3].to_string(), point))
            .or_default()
            .entry((p * 1000.0).round() as u32)
            .or_insert((0.0, 0.0));
        e.0 += v;
        e.1 += 1.0;
    }
    let mut written = Vec::new();
    for (what, xlabel, ylabel, logx, stem) in [
        (
            "first_hit_latency_ms",
            "first-hit latency (ms, log scale)",
            "fraction of successful queries",
            true,
            "cdf_first_hit_latency",
        ),
        ("node_load_per_s", "node load (messages/s, log scale)", "fraction of nodes", true, "node_load_distribution"),
    ] {
        let points: Vec<usize> = acc.keys().filter(|(d, _)| d == what).map(|(_, p)| *p).collect();
        if points.is_empty() {
            continue;
        }
        let step = points.len().div_ceil(10);
        let mut series = Vec::new();
        for &point in points.iter().step_by(step) {
            let q = &acc[&(what.to_string(), point)];
            let pts: Vec<(f64, f64, f64, f64)> = q
                .iter()
                .map(|(p, (sum, n))| (sum / n, *p as f64 / 1000.0))
                .filter(|(x, _)| !logx || *x > 0.0)
                .map(|(x, y)| (x, y, y, y))
                .collect();
            let label = labels.get(&point.to_string()).cloned().unwrap_or_else(|| format!("point {point}"));
            series.push(Series { label, markers: false, points: pts });
        }
        let spec = PlotSpec { x: xlabel.into(), y: ylabel.into(), series: None, logx, logy: false, title: None };
        let title =
            if what == "node_load_per_s" { "Per-node load distribution (CDF)" } else { "First-hit latency (CDF)" };
        written.extend(render(dir, stem, &spec, title, &series)?);
    }
    Ok(written)
}

/// Draws one chart as `plots/<stem>.svg` and a PNG at 1.5× the size.
fn render(dir: &Path, stem: &str, spec: &PlotSpec, title: &str, series: &[Series]) -> Result<[PathBuf; 2]> {
    let svg = dir.join("plots").join(format!("{stem}.svg"));
    let png = dir.join("plots").join(format!("{stem}.png"));
    {
        let root = SVGBackend::new(&svg, (800, 560)).into_drawing_area();
        chart(&root, spec, title, series)?;
        root.present().map_err(|e| anyhow!("drawing {}: {e}", svg.display()))?;
    }
    {
        let root = BitMapBackend::new(&png, (1200, 840)).into_drawing_area();
        chart(&root, spec, title, series)?;
        root.present().map_err(|e| anyhow!("drawing {}: {e}", png.display()))?;
    }
    Ok([svg, png])
}

fn fs_create(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}

fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        return (lo / 1.5, hi * 1.5);
    }
    if hi - lo < 1e-12 {
        lo -= 0.5_f64.max(lo.abs() * 0.1);
        hi += 0.5_f64.max(hi.abs() * 0.1);
    }
    let pad = (hi - lo) * 0.06;
    ((lo - pad).min(if lo >= 0.0 { 0.0 } else { lo - pad }), hi + pad)
}

/// A tick label: integers without decimals, others with up to three significant digits.
fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if (v - v.round()).abs() < 1e-9 * v.abs().max(1.0) && v.abs() < 1e15 {
        return format!("{}", v.round() as i64);
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// A tick label on an axis spanning (lo, hi): on a log axis only the ticks at 1, 2
/// and 5 times a power of ten are labelled, and beyond three decades only the powers
/// themselves, so that labels never run into each other.
/// An axis title: the column's label, saying so when the axis is logarithmic.
fn axis_title(name: &str, log: bool) -> String {
    let title = label(name);
    if log && !title.contains("log scale") { format!("{title}, log scale") } else { title }
}

fn axis_tick(v: f64, (lo, hi, log): (f64, f64, bool)) -> String {
    if !log || v <= 0.0 {
        return tick(v);
    }
    let mantissa = v / 10f64.powf(v.log10().floor());
    let near = |m: f64| (mantissa - m).abs() < 1e-6 * m || (mantissa - 10.0 * m).abs() < 1e-5 * m;
    let decades = (hi / lo).log10();
    let keep = if decades > 3.0 {
        near(1.0)
    } else if decades > 1.0 {
        near(1.0) || near(2.0) || near(5.0)
    } else {
        true
    };
    if keep { tick(v) } else { String::new() }
}

/// Candidate ticks asked of a log axis: enough that plotters offers 2 and 5 times
/// each power of ten, few enough that the lines stay a plain log grid.
const LOG_LABELS: usize = 20;

const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
];

fn chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &PlotSpec,
    title: &str,
    series: &[Series],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("plotting {}: {e:?}", spec.y);
    root.fill(&WHITE).map_err(err)?;
    let (w, _) = root.dim_in_pixel();
    let scale = w as f64 / 800.0;
    let px = |v: f64| (v * scale) as u32;
    let font = |size: f64| ("sans-serif", size * scale).into_font();
    let (x0, x1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)), spec.logx);
    let (y0, y1) = range(series.iter().flat_map(|s| s.points.iter().flat_map(|p| [p.2, p.3, p.1])), spec.logy);
    let mut builder = ChartBuilder::on(root);
    builder.caption(title, font(20.0)).margin(px(16.0)).x_label_area_size(px(48.0)).y_label_area_size(px(72.0));
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            let mut mesh = chart.configure_mesh();
            // A log axis gets light lines at 2..9 times each power of ten: with more,
            // plotters steps them by hundredths of a decade and runs past the next power.
            // Ask a log axis for many candidate ticks: plotters then offers 2 and 5
            // times the powers of ten as well, and `axis_tick` keeps what suits the span.
            if spec.logx {
                mesh.x_max_light_lines(5).x_labels(LOG_LABELS);
            }
            if spec.logy {
                mesh.y_max_light_lines(5).y_labels(LOG_LABELS);
            }
            mesh.x_desc(axis_title(&spec.x, spec.logx))
                .y_desc(axis_title(&spec.y, spec.logy))
                .label_style(font(13.0))
                .x_label_formatter(&|v| axis_tick(*v, (x0, x1, spec.logx)))
                .y_label_formatter(&|v| axis_tick(*v, (y0, y1, spec.logy)))
                .axis_desc_style(font(15.0))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(err)?;
            for (i, s) in series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let style = ShapeStyle::from(&color).stroke_width(px(2.0).max(1));
                let name = if s.label.is_empty() { label(&spec.y) } else { s.label.clone() };
                let line = s.points.iter().map(|p| (p.0, p.1));
                // Past the palette's ten colours, a colour comes back dashed.
                if i < PALETTE.len() {
                    chart
                        .draw_series(LineSeries::new(line, style))
                        .map_err(err)?
                        .label(name)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                } else {
                    let (dash, gap) = (px(6.0), px(4.0));
                    chart.draw_series(DashedLineSeries::new(line, dash, gap, style)).map_err(err)?.label(name).legend(
                        move |(x, y)| {
                            plotters::element::DashedPathElement::new(vec![(x, y), (x + 20, y)], dash, gap, style)
                        },
                    );
                }
                if s.markers {
                    chart
                        .draw_series(s.points.iter().map(|p| Circle::new((p.0, p.1), px(3.5), color.filled())))
                        .map_err(err)?;
                    chart
                        .draw_series(s.points.iter().map(|p| {
                            ErrorBar::new_vertical(
                                p.0,
                                p.2,
                                p.1,
                                p.3,
                                ShapeStyle::from(&color).stroke_width(px(1.0).max(1)),
                                px(8.0),
                            )
                        }))
                        .map_err(err)?;
                }
            }
            chart
                .configure_series_labels()
                .position(legend_corner(series, (x0, x1, spec.logx), (y0, y1, spec.logy)))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(font(13.0))
                .draw()
                .map_err(err)?;
        }};
    }
    match (spec.logx, spec.logy) {
        (false, false) => draw!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?),
        (true, false) => draw!(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1).map_err(err)?),
        (false, true) => draw!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(err)?),
        (true, true) => draw!(builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale()).map_err(err)?),
    }
    Ok(())
}

/// Where the legend hides the least of the data: one of the four corners, or the
/// middle of either side, whichever box (as tall as the legend, about 5% of the
/// height a line, and 40% of the width) covers the fewest points of the lines,
/// sampled along every segment.
fn legend_corner(series: &[Series], x: (f64, f64, bool), y: (f64, f64, bool)) -> SeriesLabelPosition {
    let unit = |v: f64, (lo, hi, log): (f64, f64, bool)| {
        if log { (v.max(f64::MIN_POSITIVE).ln() - lo.ln()) / (hi.ln() - lo.ln()) } else { (v - lo) / (hi - lo) }
    };
    let height = (0.05 * series.len() as f64 + 0.04).min(0.9);
    let mut points: Vec<(f64, f64)> = Vec::new();
    for s in series {
        let line: Vec<(f64, f64)> = s.points.iter().map(|p| (unit(p.0, x), unit(p.1, y))).collect();
        points.extend(&line);
        for w in line.windows(2) {
            points.extend((1..8).map(|i| {
                let f = i as f64 / 8.0;
                (w[0].0 + f * (w[1].0 - w[0].0), w[0].1 + f * (w[1].1 - w[0].1))
            }));
        }
    }
    // (position, left side, vertical centre of the box)
    let boxes = [
        (SeriesLabelPosition::UpperLeft, true, 1.0 - height / 2.0),
        (SeriesLabelPosition::UpperRight, false, 1.0 - height / 2.0),
        (SeriesLabelPosition::LowerRight, false, height / 2.0),
        (SeriesLabelPosition::LowerLeft, true, height / 2.0),
        (SeriesLabelPosition::MiddleRight, false, 0.5),
        (SeriesLabelPosition::MiddleLeft, true, 0.5),
    ];
    // The first among the least covered, so ties keep the usual upper left.
    let (mut best, mut fewest) = (SeriesLabelPosition::UpperLeft, usize::MAX);
    for (position, left, centre) in boxes {
        let hidden = points
            .iter()
            .filter(|(px, py)| (if left { *px < 0.4 } else { *px > 0.6 }) && (py - centre).abs() < height / 2.0)
            .count();
        if hidden < fewest {
            (best, fewest) = (position, hidden);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axes_label_only_round_ticks() {
        // Over three decades only the powers of ten; over one, also 2 and 5 times them.
        let wide = (50.0, 500_000.0, true);
        assert_eq!(["100", "", "1000", "100000"], [100.0, 300.0, 1000.0, 100_000.0].map(|v| axis_tick(v, wide)));
        let narrow = (50.0, 3500.0, true);
        assert_eq!(
            ["100", "200", "", "500", "1000"],
            [100.0, 200.0, 300.0, 500.0, 1000.0].map(|v| axis_tick(v, narrow))
        );
        assert_eq!(axis_tick(300.0, (50.0, 3500.0, false)), "300");
    }

    #[test]
    fn axis_titles_come_from_declarations_and_say_log_scale() {
        assert_eq!(axis_title("messages_per_query", true), "messages per query, log scale");
        assert_eq!(axis_title("first_hit_latency_p95_ms", false), "first-hit latency, 95th percentile (ms)");
        assert_eq!(label("resources.changes"), "resource changes per node (1/s)");
        assert_eq!(label("protocol.ttl"), "TTL (hops)");
        assert_eq!(label("merge_ratio"), "logical messages per exchange");
        assert_eq!(label("workload.rate"), "query rate (queries/s)");
        // Undeclared keys read as words, without the table's name.
        assert_eq!(label("protocol.index_service_time"), "index service time");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(0.123456), "0.123");
        assert_eq!(tick(12.5), "12.5");
        assert_eq!(tick(0.0), "0");
    }

    #[test]
    fn a_parameter_set_on_some_points_only_separates_lines() {
        // A flood, the same flood as an expanding ring, and a walk with and without
        // state: four lines, named by the keys that tell them apart.
        let header: Vec<String> = [
            "scenario",
            "point",
            "protocol.name",
            "protocol.ttl",
            "protocol.ring",
            "protocol.ring_wait",
            "protocol.walkers",
            "protocol.state",
            "resources.replicas",
            "metric",
            "mean",
            "ci95_low",
            "ci95_high",
        ]
        .map(String::from)
        .to_vec();
        let protocols = [
            ["flooding", "7", "", "", "", ""],
            ["flooding", "", "[1, 3, 5, 7]", "12ms", "", ""],
            ["random-walk", "", "", "", "16", ""],
            ["random-walk", "", "", "", "16", "true"],
        ];
        let mut rows = Vec::new();
        for (i, p) in protocols.iter().enumerate() {
            for replicas in ["10", "100"] {
                let mut row = vec!["s".to_string(), i.to_string()];
                row.extend(p.iter().map(|v| v.to_string()));
                row.extend([replicas, "messages_per_query", "5", "4", "6"].map(String::from));
                rows.push(row);
            }
        }
        let spec = PlotSpec {
            x: "resources.replicas".into(),
            y: "messages_per_query".into(),
            series: Some("protocol.name".into()),
            logx: false,
            logy: false,
            title: None,
        };
        let lines = lines(&header, &rows, &spec, Path::new("summary.csv")).expect("columns are there");
        let labels: Vec<&str> = lines.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "flooding, protocol.ttl=7",
                "flooding, protocol.ring=[1, 3, 5, 7]",
                "random-walk",
                "random-walk, protocol.state=true"
            ]
        );
        assert!(lines.iter().all(|s| s.points.len() == 2));
    }

    #[test]
    fn sweep_values_become_numbers() {
        assert_eq!(numeric("5000"), Some(5000.0));
        assert_eq!(numeric("20/s"), Some(20.0));
        assert_eq!(numeric("1/ms"), Some(1000.0));
        assert_eq!(numeric("250ms"), Some(0.25));
        assert_eq!(numeric("flooding"), None);
    }
}
