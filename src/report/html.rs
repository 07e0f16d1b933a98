//! One self-contained HTML page: inline CSS and hand-drawn inline SVG charts, no script, no
//! external resource, so it opens offline, as a CI artifact, or attached to a ticket.
//!
//! Charts are small hand-written SVG builders (a path per series, axes with ticks and labels)
//! rather than a plotting crate: a few hundred lines that compile in no time and are easy to
//! read. Tooltips are SVG `<title>` elements, which browsers show on hover without JS.

use super::{Bucket, Check, Report, RestartInfo};
use crate::judge::finding::Finding;
use std::borrow::Cow;
use std::fmt::Write;

/// Colours of worker PIDs, in order of first appearance; reused cyclically past ten workers.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
    "#bab0ac", "#86bcb6",
];
const NO_PID_COLOUR: &str = "#d0d0d0";
const AUTH_COLOUR: &str = "#2e7d32";
const ANON_COLOUR: &str = "#c62828";
const P50_COLOUR: &str = "#1565c0";
const P99_COLOUR: &str = "#ef6c00";

const CSS: &str = "
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:.3rem;color:#fff;font-weight:bold}
.pass{background:#2e7d32}.fail{background:#c62828}.warning{background:#ef6c00}.error{background:#c62828}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.6rem;overflow-x:auto;font-size:.8rem}
figure{margin:1rem 0}figcaption{font-weight:600;margin-bottom:.3rem}
svg.chart{background:#fff;border:1px solid #e3e3e3}svg text{font-size:11px;fill:#444}
.legend{font-size:.85rem;margin:.2rem 0}.swatch{display:inline-block;width:.8rem;height:.8rem;margin:0 .25rem 0 .8rem;vertical-align:middle}
.muted{color:#666}
";

/// Escape text for element content.
fn esc(text: &str) -> Cow<'_, str> {
    html_escape::encode_text(text)
}

/// Escape text for a double-quoted attribute.
fn attr(text: &str) -> Cow<'_, str> {
    html_escape::encode_double_quoted_attribute(text)
}

/// The whole report as one HTML document.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let title = format!("sesscheck {}: {}", r.scenario, r.verdict.to_uppercase());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    summary(&mut out, r);
    expectations(&mut out, &r.expectations);
    charts(&mut out, r);
    findings(&mut out, &r.findings);
    if let Some(b) = &r.browser {
        browser_panel(&mut out, b);
    }
    workers_and_phases(&mut out, r);
    let _ = write!(
        out,
        "<p class=\"muted\">sesscheck {}</p>\n</body>\n</html>\n",
        esc(&r.sesscheck_version)
    );
    out
}

/// `[browser]`: per check and page, whether it settled and what it did; the screenshot of a
/// page that did not settle is embedded, so the file stays self-contained.
fn browser_panel(out: &mut String, b: &super::browser::BrowserSection) {
    out.push_str("<h2>Browser checks</h2>\n<table class=\"browser\">\n<tr><th>result</th><th>when</th><th>user</th><th>page</th><th>time</th><th>final URL</th><th>requests</th><th>console errors</th></tr>\n");
    let mut shots = String::new();
    for c in &b.checks {
        if let Some(e) = &c.error {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td colspan=\"5\">{}</td></tr>",
                badge(false),
                esc(&c.when),
                c.vu,
                esc(e)
            );
        }
        for p in &c.pages {
            let requests: Vec<String> = p.requests.iter().take(5).map(|g| g.text()).collect();
            let console: Vec<String> = p
                .console_errors
                .iter()
                .take(3)
                .map(|e| format!("{} ×{}", e.message, e.count))
                .collect();
            let time = if p.settled {
                format!("settled in {:.0} ms", p.elapsed_ms)
            } else {
                format!("not settled after {:.1} s", p.elapsed_ms / 1000.0)
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                badge(p.settled),
                esc(&c.when),
                c.vu,
                esc(&p.path),
                esc(&time),
                esc(&p.final_url),
                esc(&requests.join("; ")),
                esc(&console.join("; "))
            );
            if let Some(png) = &p.screenshot_png {
                let caption = format!("{} ({}, user {}): {time}", p.path, c.when, c.vu);
                let _ = writeln!(
                    shots,
                    "<figure class=\"screenshot\"><figcaption>{}</figcaption><img alt=\"{}\" src=\"data:image/png;base64,{}\" style=\"width:480px;max-width:100%;border:1px solid #ccc\"></figure>",
                    esc(&caption),
                    attr(&format!("screenshot of {}", p.path)),
                    attr(png)
                );
            }
        }
    }
    out.push_str("</table>\n");
    out.push_str(&shots);
}

fn badge(passed: bool) -> &'static str {
    if passed {
        "<span class=\"badge pass\">PASS</span>"
    } else {
        "<span class=\"badge fail\">FAIL</span>"
    }
}

fn summary(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "<h1>sesscheck: {} {}</h1>",
        esc(&r.scenario),
        badge(r.verdict == "pass")
    );
    if r.interrupted {
        out.push_str("<p><strong>Interrupted</strong> (Ctrl-C / SIGTERM): partial results.</p>\n");
    }
    if let Some(a) = &r.aborted {
        let _ = writeln!(out, "<p><strong>Aborted:</strong> {}</p>", esc(a));
    }
    let rows = super::key_figures(r);
    out.push_str("<h2>Summary</h2>\n<table>\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    out.push_str("</table>\n");
}

fn restart_text(rs: &RestartInfo) -> String {
    let down = rs
        .downtime_s
        .map(|d| format!("answered again after {d:.2} s"))
        .unwrap_or_else(|| "never came back".into());
    format!("at {:.1} s into the load by {}: {down}", rs.at_s, rs.method)
}

fn expectations(out: &mut String, checks: &[Check]) {
    out.push_str("<h2>Expectations</h2>\n<table>\n<tr><th>result</th><th>expectation</th><th>limit</th><th>actual</th><th>message</th></tr>\n");
    for c in checks {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if c.measured {
                badge(c.passed)
            } else {
                "<span class=\"badge warning\">NOT MEASURED</span>"
            },
            esc(&c.name),
            esc(&c.limit),
            if c.measured {
                c.actual.to_string()
            } else {
                "-".into()
            },
            esc(&c.message)
        );
    }
    out.push_str("</table>\n");
}

fn findings(out: &mut String, list: &[Finding]) {
    out.push_str("<h2>Findings</h2>\n");
    if list.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    for f in list {
        let severity = format!("{:?}", f.severity).to_lowercase();
        let _ = writeln!(
            out,
            "<h3><code>{}</code> <span class=\"badge {severity}\">{severity}</span> \
             <span class=\"muted\">{} times, first at {:.2} s</span></h3>\n<p>{}</p>",
            esc(f.kind.as_str()),
            f.count,
            f.first_at_s,
            esc(&f.message)
        );
        if !f.example.is_null() {
            let example = serde_json::to_string_pretty(&f.example).unwrap_or_default();
            let _ = writeln!(
                out,
                "<details open><summary>example</summary><pre>{}</pre></details>",
                esc(&example)
            );
        }
    }
}

fn workers_and_phases(out: &mut String, r: &Report) {
    if !r.workers.pids.is_empty() {
        out.push_str("<h2>Workers</h2>\n<table>\n<tr><th>worker</th><th>answers</th></tr>\n");
        for (pid, n) in &r.workers.pids {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"num\">{n}</td></tr>",
                esc(pid)
            );
        }
        out.push_str("</table>\n");
    }
    if !r.phases.is_empty() {
        out.push_str("<h2>Phases</h2>\n<table>\n<tr>");
        for name in super::PHASE_COLUMNS {
            let _ = write!(out, "<th>{name}</th>");
        }
        out.push_str("</tr>\n");
        for p in &r.phases {
            out.push_str("<tr>");
            // The phase's name, then its numbers.
            for (i, cell) in p.cells().iter().enumerate() {
                let class = if i == 0 { "" } else { " class=\"num\"" };
                let _ = write!(out, "<td{class}>{}</td>", esc(cell));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
}

// ---------------------------------------------------------------- charts

/// A series: one stacked area or one line, with its legend label and colour.
struct Series {
    label: String,
    colour: &'static str,
    values: Vec<f64>,
}

fn charts(out: &mut String, r: &Report) {
    out.push_str("<h2>Timeline</h2>\n");
    if r.timeline.is_empty() {
        out.push_str("<p>No timeline recorded.</p>\n");
        return;
    }
    if !r.restarts.is_empty() {
        out.push_str("<p class=\"muted\">Shaded: restart windows, from the restart until the target answered ready.</p>\n");
    }
    let frame = Frame::new(&r.timeline, r.duration_s);
    let pids = per_second(&frame, pid_series(&r.timeline));
    figure(
        out,
        "requests-by-pid",
        "Requests over time, by worker PID",
        "requests/s",
        &frame,
        &pids,
        true,
        &r.restarts,
    );
    let auth = per_second(
        &frame,
        vec![
            series("authenticated", AUTH_COLOUR, &r.timeline, |b| {
                b.authenticated as f64
            }),
            series("anonymous", ANON_COLOUR, &r.timeline, |b| {
                b.anonymous as f64
            }),
        ],
    );
    figure(
        out,
        "auth",
        "Probes: authenticated vs anonymous",
        "probes/s",
        &frame,
        &auth,
        false,
        &r.restarts,
    );
    let latency = vec![
        series("p50", P50_COLOUR, &r.timeline, |b| b.p50_ms),
        series("p99", P99_COLOUR, &r.timeline, |b| b.p99_ms),
    ];
    figure(
        out,
        "latency",
        "Latency p50 / p99",
        "ms",
        &frame,
        &latency,
        false,
        &r.restarts,
    );
}

fn series(
    label: &str,
    colour: &'static str,
    timeline: &[Bucket],
    value: impl Fn(&Bucket) -> f64,
) -> Series {
    Series {
        label: label.into(),
        colour,
        values: timeline.iter().map(value).collect(),
    }
}

/// Counts per bucket as rates: the last bucket is usually cut short by the end of the run, and
/// as a raw count it would look like a sudden drop.
fn per_second(frame: &Frame, mut list: Vec<Series>) -> Vec<Series> {
    for s in &mut list {
        for (i, v) in s.values.iter_mut().enumerate() {
            *v = (*v / frame.span(i)).round();
        }
    }
    list
}

/// One series per worker identity (in order of first appearance, so colours follow the run), plus
/// the requests no worker claimed (errors, timeouts), so the stack adds up to all requests.
fn pid_series(timeline: &[Bucket]) -> Vec<Series> {
    let mut order: Vec<&str> = Vec::new();
    for b in timeline {
        for pid in b.pids.keys() {
            if !order.contains(&pid.as_str()) {
                order.push(pid);
            }
        }
    }
    let mut out: Vec<Series> = order
        .iter()
        .enumerate()
        .map(|(i, pid)| {
            series(
                &format!("worker {pid}"),
                PALETTE[i % PALETTE.len()],
                timeline,
                |b| b.pids.get(*pid).copied().unwrap_or(0) as f64,
            )
        })
        .collect();
    // Only probes name the worker; app pages and failed requests stay unattributed.
    let unclaimed = series(
        "no worker identity (app pages, errors)",
        NO_PID_COLOUR,
        timeline,
        |b| b.requests.saturating_sub(b.pids.values().sum()) as f64,
    );
    if unclaimed.values.iter().any(|&v| v > 0.0) {
        out.push(unclaimed);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn figure(
    out: &mut String,
    id: &str,
    caption: &str,
    y_label: &str,
    frame: &Frame,
    series: &[Series],
    stacked: bool,
    restarts: &[RestartInfo],
) {
    let _ = writeln!(
        out,
        "<figure id=\"{}\"><figcaption>{}</figcaption>",
        attr(id),
        esc(caption)
    );
    legend(out, series);
    out.push_str(&chart_svg(
        frame, series, stacked, restarts, caption, y_label,
    ));
    out.push_str("</figure>\n");
}

fn legend(out: &mut String, series: &[Series]) {
    out.push_str("<div class=\"legend\">");
    for s in series {
        let _ = write!(
            out,
            "<span class=\"swatch\" style=\"background:{}\"></span>{}",
            s.colour,
            esc(&s.label)
        );
    }
    out.push_str("</div>\n");
}

/// Plot area geometry and the time axis shared by every chart.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    /// Bucket start times and width (s): values are drawn at bucket centres.
    t: Vec<f64>,
    bucket_s: f64,
    t_max: f64,
}

impl Frame {
    fn new(timeline: &[Bucket], duration_s: f64) -> Frame {
        let t: Vec<f64> = timeline.iter().map(|b| b.t_s).collect();
        let bucket_s = match t.as_slice() {
            [a, b, ..] if b > a => b - a,
            _ => duration_s.max(1.0),
        };
        let t_max = duration_s.max(t.last().copied().unwrap_or(0.0)).max(1.0);
        Frame {
            width: 960.0,
            height: 260.0,
            left: 60.0,
            right: 20.0,
            top: 14.0,
            bottom: 42.0,
            t,
            bucket_s,
            t_max,
        }
    }
    fn plot_w(&self) -> f64 {
        self.width - self.left - self.right
    }
    fn plot_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }
    fn x(&self, t_s: f64) -> f64 {
        self.left + (t_s.clamp(0.0, self.t_max) / self.t_max) * self.plot_w()
    }
    fn y(&self, v: f64, y_max: f64) -> f64 {
        self.top + self.plot_h() * (1.0 - (v / y_max).clamp(0.0, 1.0))
    }
    /// Where bucket `i`'s value is drawn: the centre of its (possibly cut short) interval.
    fn centre(&self, i: usize) -> f64 {
        self.t[i] + self.span(i) / 2.0
    }
    /// How long bucket `i` really lasted (s): the last one ends with the run.
    fn span(&self, i: usize) -> f64 {
        let start = self.t[i];
        ((start + self.bucket_s).min(self.t_max) - start).max(0.05)
    }
}

/// 1, 2 or 5 times a power of ten, giving about `target` ticks up to `max`.
fn nice_step(max: f64, target: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let raw = max / target;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_tick(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn chart_svg(
    f: &Frame,
    series: &[Series],
    stacked: bool,
    restarts: &[RestartInfo],
    title: &str,
    y_label: &str,
) -> String {
    let tops = if stacked {
        cumulative(series)
    } else {
        series.iter().map(|s| s.values.clone()).collect()
    };
    let data_max = tops.iter().flatten().copied().fold(0.0, f64::max);
    let step = nice_step(data_max.max(1.0), 5.0);
    let y_max = (data_max / step).ceil().max(1.0) * step;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">\
         <title>{}</title>",
        esc(title),
        w = f.width,
        h = f.height
    );
    restart_shading(&mut svg, f, restarts);
    axes(&mut svg, f, y_max, step, y_label);
    for (i, s) in series.iter().enumerate() {
        if stacked {
            let below = if i == 0 { None } else { Some(&tops[i - 1]) };
            area_path(&mut svg, f, s, &tops[i], below, y_max);
        } else {
            line_path(&mut svg, f, s, y_max);
        }
    }
    hover_columns(&mut svg, f, series, y_label);
    svg.push_str("</svg>\n");
    svg
}

/// Running totals: series `i` is drawn between totals `i - 1` and `i`.
fn cumulative(series: &[Series]) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::new();
    for s in series {
        let next = match out.last() {
            Some(prev) => prev.iter().zip(&s.values).map(|(a, b)| a + b).collect(),
            None => s.values.clone(),
        };
        out.push(next);
    }
    out
}

fn restart_shading(svg: &mut String, f: &Frame, restarts: &[RestartInfo]) {
    for r in restarts {
        // A target that never came back stays down until the end of the chart.
        let end = r.downtime_s.map(|d| r.at_s + d).unwrap_or(f.t_max);
        let (x0, x1) = (f.x(r.at_s), f.x(end));
        let _ = writeln!(
            svg,
            "<rect class=\"restart\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
             fill=\"#c62828\" fill-opacity=\"0.12\"><title>{}</title></rect>",
            f.top,
            (x1 - x0).max(1.5),
            f.plot_h(),
            esc(&format!("restart {}", restart_text(r)))
        );
    }
}

fn axes(svg: &mut String, f: &Frame, y_max: f64, y_step: f64, y_label: &str) {
    let (x0, x1, y0, y1) = (f.left, f.left + f.plot_w(), f.top + f.plot_h(), f.top);
    let mut v = 0.0;
    while v <= y_max + 1e-9 {
        let y = f.y(v, y_max);
        let _ = writeln!(
            svg,
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x0 - 6.0,
            y + 4.0,
            fmt_tick(v)
        );
        v += y_step;
    }
    let t_step = nice_step(f.t_max, 10.0);
    let mut t = 0.0;
    while t <= f.t_max + 1e-9 {
        let x = f.x(t);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y0}\" y2=\"{:.1}\" stroke=\"#888\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y0 + 4.0,
            y0 + 16.0,
            fmt_tick(t)
        );
        t += t_step;
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y0}\" y2=\"{y0}\" stroke=\"#888\"/>\
         <line x1=\"{x0}\" x2=\"{x0}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#888\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time since start (s)</text>\
         <text transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        x0 + f.plot_w() / 2.0,
        f.height - 6.0,
        f.top + f.plot_h() / 2.0,
        esc(y_label)
    );
}

fn points(f: &Frame, values: &[f64], y_max: f64) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (f.x(f.centre(i)), f.y(v, y_max)))
        .collect()
}

fn path_data(pts: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (i, (x, y)) in pts.iter().enumerate() {
        let _ = write!(d, "{}{x:.1},{y:.1} ", if i == 0 { "M" } else { "L" });
    }
    d.trim_end().to_string()
}

fn total(s: &Series) -> f64 {
    s.values.iter().sum()
}

/// A filled band between this series' running total and the one below it.
fn area_path(
    svg: &mut String,
    f: &Frame,
    s: &Series,
    top: &[f64],
    below: Option<&Vec<f64>>,
    y_max: f64,
) {
    let mut pts = points(f, top, y_max);
    let zeros = vec![0.0; top.len()];
    let mut base = points(f, below.unwrap_or(&zeros), y_max);
    base.reverse();
    pts.extend(base);
    let _ = writeln!(
        svg,
        "<path class=\"series\" d=\"{} Z\" fill=\"{}\" fill-opacity=\"0.85\" stroke=\"#fff\" stroke-width=\"0.5\">\
         <title>{}: {} in total</title></path>",
        path_data(&pts),
        s.colour,
        esc(&s.label),
        total(s)
    );
}

fn line_path(svg: &mut String, f: &Frame, s: &Series, y_max: f64) {
    let _ = writeln!(
        svg,
        "<path class=\"series\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\">\
         <title>{}</title></path>",
        path_data(&points(f, &s.values, y_max)),
        s.colour,
        esc(&s.label)
    );
}

/// Invisible full-height columns, one per bucket, whose tooltip lists every series' value.
fn hover_columns(svg: &mut String, f: &Frame, series: &[Series], unit: &str) {
    for (i, &start) in f.t.iter().enumerate() {
        let x0 = f.x(start);
        let x1 = f.x(start + f.bucket_s);
        let mut tip = format!("{:.1}–{:.1} s", start, (start + f.bucket_s).min(f.t_max));
        for s in series {
            let _ = write!(tip, "\n{}: {} {unit}", s.label, s.values[i]);
        }
        let _ = writeln!(
            svg,
            "<rect class=\"hover\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"transparent\">\
             <title>{}</title></rect>",
            f.top,
            (x1 - x0).max(0.5),
            f.plot_h(),
            esc(&tip)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::sample_report;

    #[test]
    fn self_contained_with_three_charts() {
        let html = render(&sample_report());
        assert_eq!(html.matches("<svg").count(), 3, "{html}");
        for id in ["requests-by-pid", "auth", "latency"] {
            assert!(html.contains(&format!("id=\"{id}\"")));
        }
        assert!(!html.contains("<script"));
        let without_target = html.replace("http://127.0.0.1:8765", "");
        assert!(!without_target.contains("http://") && !without_target.contains("https://"));
    }

    #[test]
    fn one_path_per_series_and_restart_shading_in_every_chart() {
        let r = sample_report();
        let html = render(&r);
        // 2 PIDs (+ the unclaimed band in the sample) + 2 auth lines + 2 latency lines.
        let pid_series = pid_series(&r.timeline).len();
        assert_eq!(
            html.matches("class=\"series\"").count(),
            pid_series + 4,
            "{html}"
        );
        assert_eq!(
            html.matches("class=\"restart\"").count(),
            3 * r.restarts.len()
        );
    }

    #[test]
    fn finding_messages_are_escaped() {
        let mut r = sample_report();
        r.findings[0].message = "<script>alert('x')</script>".into();
        let html = render(&r);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(48.0, 5.0), 10.0);
        assert!((nice_step(0.3, 5.0) - 0.1).abs() < 1e-12);
    }
}
