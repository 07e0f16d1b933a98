//! The terminal summary (comfy-table): what an engineer reads first.

use super::Report;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, ContentArrangement, Table};

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    // Not a terminal (CI logs, a pipe): no width to fit, and long finding messages would make
    // one endless line. Wrap them inside their cell at a width that reads well everywhere.
    if t.width().is_none() {
        t.set_width(FALLBACK_WIDTH);
    }
    t
}

/// The table width when the output is not a terminal.
const FALLBACK_WIDTH: u16 = 120;

fn verdict_cell(passed: bool) -> Cell {
    if passed {
        Cell::new("PASS").fg(Color::Green)
    } else {
        Cell::new("FAIL").fg(Color::Red)
    }
}

/// The whole summary as text (tables separated by blank lines).
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let mut s = table(&["sesscheck", &r.scenario]);
    s.add_row(vec![
        Cell::new("verdict"),
        verdict_cell(r.verdict == "pass"),
    ]);
    if r.interrupted {
        s.add_row(vec![
            "interrupted",
            "yes (Ctrl-C / SIGTERM): partial results",
        ]);
    }
    if let Some(a) = &r.aborted {
        s.add_row(vec!["aborted", a.as_str()]);
    }
    for (label, text) in super::key_figures(r) {
        s.add_row(vec![label.to_string(), text]);
    }
    out.push_str(&s.to_string());

    if !r.workers.pids.is_empty() {
        let mut w = table(&["worker", "answers"]);
        for (pid, n) in &r.workers.pids {
            w.add_row(vec![pid.clone(), n.to_string()]);
        }
        out.push_str("\n\n");
        out.push_str(&w.to_string());
    }
    if !r.phases.is_empty() {
        let mut p = table(&super::PHASE_COLUMNS);
        for ph in &r.phases {
            p.add_row(ph.cells().to_vec());
        }
        out.push_str("\n\n");
        out.push_str(&p.to_string());
    }
    let mut e = table(&["expectation", "limit", "actual", "result"]);
    for c in &r.expectations {
        e.add_row(vec![
            Cell::new(&c.name),
            Cell::new(&c.limit),
            Cell::new(if c.measured {
                c.actual.to_string()
            } else {
                "-".into()
            }),
            if c.measured {
                verdict_cell(c.passed)
            } else {
                Cell::new("NOT MEASURED").fg(Color::Yellow)
            },
        ]);
    }
    out.push_str("\n\n");
    out.push_str(&e.to_string());
    if !r.findings.is_empty() {
        let mut f = table(&["finding", "severity", "count", "first at", "message"]);
        for x in &r.findings {
            f.add_row(vec![
                x.kind.to_string(),
                format!("{:?}", x.severity).to_lowercase(),
                x.count.to_string(),
                format!("{:.2} s", x.first_at_s),
                x.message.clone(),
            ]);
        }
        out.push_str("\n\n");
        out.push_str(&f.to_string());
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_finding_messages_wrap_inside_their_cell() {
        let mut r = crate::report::testing::sample_report();
        r.findings[0].message = "a very long message about sessions ".repeat(20);
        let text = super::render(&r);
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        // The terminal's width when the tests run in one, else the fallback.
        let width = super::table(&["x"]).width().unwrap() as usize;
        assert!(widest <= width, "{widest} > {width}:\n{text}");
        // Wrapped, not cut: every word is still there.
        assert_eq!(text.matches("long").count(), 20, "{text}");
    }
}
