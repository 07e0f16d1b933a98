//! Markdown for CI job summary pages (GitHub `$GITHUB_STEP_SUMMARY`, GitLab, PR comments):
//! the verdict first, then the figures, then what failed and an example of each finding.

use super::Report;
use std::fmt::Write;

/// The whole report as GitHub-flavoured Markdown.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    verdict(&mut out, r);
    key_figures(&mut out, r);
    workers(&mut out, r);
    phases(&mut out, r);
    expectations(&mut out, r);
    findings(&mut out, r);
    out
}

/// A table cell: `|` would end the cell and a newline the row.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

fn row(out: &mut String, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn header(out: &mut String, names: &[&str]) {
    let _ = writeln!(out, "| {} |", names.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(names.len()));
}

fn pass_fail(passed: bool) -> &'static str {
    if passed {
        "PASS"
    } else {
        "FAIL"
    }
}

fn verdict(out: &mut String, r: &Report) {
    let passed = r.verdict == "pass";
    let _ = writeln!(out, "## sesscheck: {}", cell(&r.scenario));
    let _ = writeln!(out);
    let failed = r.expectations.iter().filter(|c| !c.passed).count();
    // An interrupted or aborted run fails whatever its expectations say: the line says why.
    let why = if r.interrupted {
        "interrupted before the load ended; "
    } else if r.aborted.is_some() {
        "aborted; "
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "**Verdict: {}** ({why}{} of {} expectations held, {} findings)",
        pass_fail(passed),
        r.expectations.len() - failed,
        r.expectations.len(),
        r.findings.len()
    );
    if r.interrupted {
        let _ = writeln!(out, "\n> Interrupted (Ctrl-C / SIGTERM): partial results.");
    }
    if let Some(a) = &r.aborted {
        let _ = writeln!(out, "\n> Aborted: {}", a.replace('\n', " "));
    }
    let _ = writeln!(out);
}

fn key_figures(out: &mut String, r: &Report) {
    let _ = writeln!(out, "### Key figures\n");
    header(out, &["figure", "value"]);
    for (label, text) in super::key_figures(r) {
        // The URL in code style, so the job summary does not turn it into a link.
        let text = if label == "target" {
            format!("`{text}`")
        } else {
            text
        };
        row(out, &[label.to_string(), text]);
    }
    let _ = writeln!(out);
}

fn workers(out: &mut String, r: &Report) {
    if r.workers.pids.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Workers\n");
    header(out, &["worker", "answers"]);
    for (pid, n) in &r.workers.pids {
        row(out, &[pid.clone(), n.to_string()]);
    }
    let _ = writeln!(out);
}

fn phases(out: &mut String, r: &Report) {
    if r.phases.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Phases\n");
    header(out, &super::PHASE_COLUMNS);
    for p in &r.phases {
        row(out, &p.cells());
    }
    let _ = writeln!(out);
}

fn expectations(out: &mut String, r: &Report) {
    let _ = writeln!(out, "### Expectations\n");
    header(
        out,
        &["result", "expectation", "limit", "actual", "message"],
    );
    for c in &r.expectations {
        row(
            out,
            &[
                if c.measured {
                    pass_fail(c.passed).into()
                } else {
                    "NOT MEASURED".into()
                },
                c.name.clone(),
                c.limit.clone(),
                if c.measured {
                    c.actual.to_string()
                } else {
                    "-".into()
                },
                c.message.clone(),
            ],
        );
    }
    let _ = writeln!(out);
}

fn findings(out: &mut String, r: &Report) {
    let _ = writeln!(out, "### Findings\n");
    if r.findings.is_empty() {
        let _ = writeln!(out, "None.");
        return;
    }
    for f in &r.findings {
        let severity = format!("{:?}", f.severity).to_lowercase();
        let _ = writeln!(
            out,
            "#### `{}` ({severity}, {} times, first at {:.2} s)\n",
            f.kind, f.count, f.first_at_s
        );
        let _ = writeln!(out, "{}\n", f.message);
        if !f.example.is_null() {
            let example = serde_json::to_string_pretty(&f.example).unwrap_or_default();
            // A fence longer than any backtick run inside keeps the block closed where we mean.
            let fence = "`".repeat(longest_backtick_run(&example).max(2) + 1);
            let _ = writeln!(
                out,
                "<details><summary>example</summary>\n\n{fence}json\n{example}\n{fence}\n\n</details>\n"
            );
        }
    }
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::sample_report;

    #[test]
    fn has_verdict_tables_and_every_finding() {
        let r = sample_report();
        let md = render(&r);
        assert!(md.contains("**Verdict: FAIL**"), "{md}");
        for f in &r.findings {
            assert!(md.contains(&format!("`{}`", f.kind)), "{md}");
        }
        assert!(md.contains("| FAIL | max_logouts |"), "{md}");
        assert!(md.contains("```json"), "{md}");
    }

    #[test]
    fn pipes_in_cells_are_escaped() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        let mut r = sample_report();
        r.expectations[0].message = "x | y".into();
        assert!(render(&r).contains("x \\| y"));
    }
}
