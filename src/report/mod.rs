//! The report: the JSON contract (see README), built from observations and findings, and
//! rendered in several formats. Every rendering goes through `redact` before it is written.
//!
//! The folder owns the report types, the renderers (`table`, `junit`, `markdown`, `html`,
//! `browser`), `merge` and `compare`. May import `judge`, `load` (the generator's figures),
//! `observe`, `scenario`, `browser` and `util`; only `run` and `cli` import it.

pub mod browser;
pub mod compare;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod table;

pub use crate::load::schedule::Generator;
pub use crate::observe::digest::Bucket;
pub use crate::util::stats::{ms, new_histogram, round3};

use crate::judge::audit::LifetimeInfo;
pub use crate::judge::expectations::Check;
use crate::judge::expectations::{fails_kind, grade_all, Counts, Figures, NotCounted};
use crate::judge::finding::{Finding, FindingKind, Severity};
use crate::observe::digest::Digest;
use crate::observe::{Phase, RestartWindow};
use crate::scenario::Expect;
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub sesscheck_version: String,
    pub scenario: String,
    /// "pass" or "fail".
    pub verdict: String,
    pub started_at: String,
    pub duration_s: f64,
    /// The run was stopped by Ctrl-C or SIGTERM before its end.
    #[serde(default)]
    pub interrupted: bool,
    /// Why the run was cut short (a restart that failed), if it was.
    #[serde(default)]
    pub aborted: Option<String>,
    pub target: TargetInfo,
    pub requests: Requests,
    pub workers: Workers,
    pub auth: Auth,
    pub logins: Logins,
    pub restarts: Vec<RestartInfo>,
    pub phases: Vec<PhaseStats>,
    pub latency_ms: Latency,
    /// Of `latency_ms`, the wait of pages and probes for one of the `[load] max_connections`
    /// connections, queued in sesscheck before they were sent (over all of them, most 0).
    /// Only when some request waited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_wait_ms: Option<Latency>,
    pub expectations: Vec<Check>,
    pub findings: Vec<Finding>,
    pub server_log: ServerLogInfo,
    /// Per time bucket, for charts.
    pub timeline: Vec<Bucket>,
    /// Measured session lifetime (when the scenario has a [lifetime] section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<LifetimeInfo>,
    /// Open-loop runs (`[load] rate`): what the request generator achieved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<Generator>,
    /// The latency histograms themselves (base64 of the HdrHistogram V2+deflate serialization,
    /// µs), so that `sesscheck merge` can combine shard reports exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histograms: Option<Histograms>,
    /// `--shard I/N` of the run that wrote this report, or the shards a merged report combines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Unusual observations (anonymous, failed...) beyond the 500,000 a run keeps for the
    /// detectors: counted in every figure, but findings describe only the first 500,000.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_kept: u64,
    /// `[browser]`: what a real headless browser saw of the scenario's pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<browser::BrowserSection>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Serialized latency histograms: overall and per phase name.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Histograms {
    pub overall: String,
    #[serde(default)]
    pub phases: BTreeMap<String, String>,
    /// The wait for a connection slot (`connection_wait_ms`), when some request waited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_wait: Option<String>,
}

/// Encode a histogram for the report (V2 with deflate, then base64).
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    let mut bytes = Vec::new();
    // Serializing into a Vec cannot fail for a valid histogram.
    let _ = V2DeflateSerializer::new().serialize(h, &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A histogram's base64 text in a report is a few kB; more is not one of ours.
const MAX_HISTOGRAM_TEXT: usize = 8 << 20;
/// What its deflated bytes may expand to: the counts of 1 µs..1 h at 3 digits take < 0.5 MB.
const MAX_HISTOGRAM_BYTES: u64 = 4 << 20;
/// HdrHistogram V2 cookies: plain and deflated.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// A V2 header: cookie, payload length, normalizing offset, digits, lowest, highest, ratio.
const V2_HEADER: usize = 40;

/// Decode what `encode_histogram` wrote. A report is input from anywhere (`merge` reads files
/// from many machines): every length and size it claims is checked against the bytes really
/// there, and the histogram's bounds must be sesscheck's own, before anything is allocated
/// for them. (hdrhistogram's decoder allocates what the header claims: 512 MiB for a 2 kB
/// report whose header said so.)
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>> {
    use base64::Engine;
    use hdrhistogram::serialization::Deserializer;
    use std::io::Read;
    let text = text.trim();
    anyhow::ensure!(
        text.len() <= MAX_HISTOGRAM_TEXT,
        "histogram is {} bytes of text, more than any sesscheck report holds",
        text.len()
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .context("histogram is not base64")?;
    let be32 = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let be64 = |b: &[u8], at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    let plain = match be32(&bytes, 0) {
        Some(V2_COMPRESSED_COOKIE) => {
            let claimed = be32(&bytes, 4).context("histogram is cut short")? as usize;
            let deflated = bytes.get(8..).unwrap_or_default();
            anyhow::ensure!(
                claimed <= deflated.len(),
                "histogram claims {claimed} compressed bytes but holds {}",
                deflated.len()
            );
            let mut plain = Vec::new();
            flate2::read::ZlibDecoder::new(&deflated[..claimed])
                .take(MAX_HISTOGRAM_BYTES + 1)
                .read_to_end(&mut plain)
                .context("histogram does not inflate")?;
            anyhow::ensure!(
                plain.len() as u64 <= MAX_HISTOGRAM_BYTES,
                "histogram inflates to more than {MAX_HISTOGRAM_BYTES} bytes"
            );
            plain
        }
        Some(V2_COOKIE) => bytes,
        _ => anyhow::bail!("histogram does not decode: not an HdrHistogram V2 serialization"),
    };
    anyhow::ensure!(
        be32(&plain, 0) == Some(V2_COOKIE),
        "histogram does not decode: bad inner cookie"
    );
    let payload = be32(&plain, 4).context("histogram is cut short")? as usize;
    anyhow::ensure!(
        payload <= plain.len().saturating_sub(V2_HEADER),
        "histogram claims {payload} payload bytes but holds {}",
        plain.len().saturating_sub(V2_HEADER)
    );
    let ours = new_histogram();
    let bounds = (be32(&plain, 12), be64(&plain, 16), be64(&plain, 24));
    anyhow::ensure!(
        bounds
            == (
                Some(u32::from(ours.sigfig())),
                Some(ours.low()),
                Some(ours.high())
            ),
        "histogram has bounds {bounds:?}, not sesscheck's (3 digits, 1 µs to 1 h): not written by sesscheck"
    );
    Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(plain))
        .map_err(|e| anyhow::anyhow!("histogram does not decode: {e:?}"))
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TargetInfo {
    pub url: String,
    /// How sesscheck started the target, if it did.
    pub spawned: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Requests {
    pub total: u64,
    pub ok: u64,
    pub errors: u64,
    pub per_second: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Workers {
    pub distinct_pids: usize,
    /// Worker identity ("17", "web-2:17") → answers carrying it (probes; with
    /// `[probe] worker_header`, every page). The key names are kept from when it was PIDs.
    pub pids: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Auth {
    pub probes: u64,
    pub authenticated: u64,
    pub unauthenticated: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Logins {
    pub attempts: u64,
    pub ok: u64,
    pub failed: u64,
    /// Deliberate logouts (`logout_every`).
    pub logouts: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestartInfo {
    /// Seconds from the start of the load (the clock of `[restart] at` and of every time here).
    pub at_s: f64,
    pub method: String,
    /// From the restart's start until the target answered again (null: never).
    pub downtime_s: Option<f64>,
    /// From the restart's start until every worker `ready.min_workers` waits for had answered
    /// the probe (absent: not waited for, or they never all did). Added in issue 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_workers_s: Option<f64>,
    /// From the restart's start until the last user who was served after it got a logged-in
    /// answer (absent: nobody was). A HUP's old workers answer the ready check at once while
    /// the new ones still start (Label Studio: ready after 0.02 s, users back after 7.7 s).
    /// Added in stop 29.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_back_s: Option<f64>,
}

/// Fill in each restart's `all_workers_s` from when all workers answered (run times, µs).
pub fn add_all_workers(
    rep: &mut Report,
    restarts: &[crate::observe::RestartWindow],
    all_workers_us: &[Option<u64>],
) {
    for ((info, window), t) in rep.restarts.iter_mut().zip(restarts).zip(all_workers_us) {
        info.all_workers_s = t.map(|t| round3(t.saturating_sub(window.start_us) as f64 / 1e6));
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PhaseStats {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    /// Anonymous answers to logged-in users that nothing they did explains.
    pub logouts: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The phase table's columns, as every format heads them. "anonymous", not "logouts": the
/// column counts restart logouts too, which `max_logouts` does not.
pub const PHASE_COLUMNS: [&str; 7] = [
    "phase",
    "requests",
    "errors",
    "anonymous",
    "p50 ms",
    "p99 ms",
    "max ms",
];

impl PhaseStats {
    /// This phase's row, in `PHASE_COLUMNS`' order.
    pub fn cells(&self) -> [String; 7] {
        [
            self.name.clone(),
            self.requests.to_string(),
            self.errors.to_string(),
            self.logouts.to_string(),
            self.p50_ms.to_string(),
            self.p99_ms.to_string(),
            self.max_ms.to_string(),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// One expectation and whether it held: a JUnit test case, a CI gate line.

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ServerLogInfo {
    /// Lines of the target's output (or `[target] log`) matching the interrupted pattern.
    pub matches: u64,
    pub by_phase: BTreeMap<String, u64>,
    pub example: Option<String>,
}

/// Everything a report is made from.
pub struct Inputs<'a> {
    pub scenario: &'a str,
    pub url: &'a str,
    pub spawned: Option<String>,
    pub started_at: String,
    pub duration_s: f64,
    /// Every observation's counts and histograms.
    pub digest: &'a Digest,
    pub restarts: &'a [RestartWindow],
    pub findings: Vec<Finding>,
    pub expect: &'a Expect,
    pub interrupted: bool,
    pub aborted: Option<String>,
    /// Matching server log lines with their run time (µs).
    pub server_log: &'a [(u64, String)],
    pub server_log_count: u64,
    pub lifetime: Option<LifetimeInfo>,
    /// Finding kinds of the session audits that are on (each becomes an expectation).
    pub audits: Vec<FindingKind>,
}

impl Latency {
    /// The summary of a latency histogram (recorded in µs) in milliseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            p50: ms(h, 0.5),
            p90: ms(h, 0.9),
            p99: ms(h, 0.99),
            max: ms(h, 1.0),
            mean: if h.is_empty() {
                0.0
            } else {
                round3(h.mean() / 1000.0)
            },
        }
    }
}

pub fn build(inp: Inputs) -> Report {
    let d = inp.digest;
    let waited = d.connection_wait.max() > 0;
    let histograms = Histograms {
        overall: encode_histogram(&d.overall),
        connection_wait: waited.then(|| encode_histogram(&d.connection_wait)),
        phases: d
            .phases
            .iter()
            .map(|(p, t)| (p.name().to_string(), encode_histogram(&t.latency)))
            .collect(),
    };
    let phases = d
        .phases
        .iter()
        .map(|(p, t)| PhaseStats {
            name: p.name().into(),
            requests: t.requests,
            errors: t.errors,
            logouts: t.logouts,
            p50_ms: ms(&t.latency, 0.5),
            p90_ms: ms(&t.latency, 0.9),
            p99_ms: ms(&t.latency, 0.99),
            max_ms: ms(&t.latency, 1.0),
        })
        .collect();
    let pids: BTreeMap<String, u64> = d.pids.iter().map(|(p, n)| (p.to_string(), *n)).collect();
    let auth = Auth {
        probes: d.probes_answered,
        authenticated: d.probes_authenticated,
        unauthenticated: d.probes_anonymous,
    };
    let logins = Logins {
        attempts: d.logins,
        ok: d.logins_ok,
        failed: d.logins - d.logins_ok,
        logouts: d.logouts,
    };
    let requests = Requests {
        total: d.total,
        ok: d.ok,
        errors: d.errors,
        per_second: if inp.duration_s > 0.0 {
            round3(d.total as f64 / inp.duration_s)
        } else {
            0.0
        },
    };
    let restarts: Vec<RestartInfo> = inp
        .restarts
        .iter()
        .enumerate()
        .map(|(i, r)| RestartInfo {
            at_s: round3(r.start_us as f64 / 1e6),
            method: r.method.clone(),
            downtime_s: r
                .ready_us
                .map(|e| round3(e.saturating_sub(r.start_us) as f64 / 1e6)),
            all_workers_s: None,
            users_back_s: d
                .recovery
                .get(i)
                .and_then(|rec| rec.back_at.values().max())
                .map(|back| round3(back.saturating_sub(r.start_us) as f64 / 1e6)),
        })
        .collect();
    let latency_ms = Latency::of(&d.overall);
    let connection_wait_ms = waited.then(|| Latency::of(&d.connection_wait));
    let mut server_log = ServerLogInfo {
        matches: inp.server_log_count,
        ..Default::default()
    };
    for (t, _) in inp.server_log {
        *server_log
            .by_phase
            .entry(Phase::at(*t, inp.restarts).name().to_string())
            .or_default() += 1;
    }
    server_log.example = inp
        .server_log
        .first()
        .map(|(_, l)| l.chars().take(300).collect());

    let workers = Workers {
        distinct_pids: pids.len(),
        pids,
    };
    let mut findings = inp.findings;
    let persistence = Counts {
        numerator: d.persistence_ok,
        denominator: d.persistence_judged,
    };
    let figures = Figures {
        findings: Figures::counts_of(&findings),
        traffic: d.traffic,
        p99_ms: latency_ms.p99,
        p99_wait_ms: connection_wait_ms.as_ref().map(|w| w.p99),
        downtimes_s: restarts.iter().map(|r| r.downtime_s).collect(),
        distinct_workers: workers.distinct_pids,
        persistence,
        nothing_measured: Figures::nothing_measured(&findings, d.logins_ok, persistence),
        not_counted: NotCounted::of(
            d.phases.values().map(|t| t.errors).sum(),
            d.logins - d.logins_ok,
            &findings,
        ),
    };
    let expectations = grade_all(inp.expect, &inp.audits, &figures);
    grade_findings(&mut findings, &expectations);
    // A run cut short verified nothing to the end: never a pass.
    let passed = expectations.iter().all(|c| c.passed) && inp.aborted.is_none() && !inp.interrupted;
    Report {
        sesscheck_version: env!("CARGO_PKG_VERSION").into(),
        scenario: inp.scenario.into(),
        verdict: if passed { "pass" } else { "fail" }.into(),
        started_at: inp.started_at,
        duration_s: round3(inp.duration_s),
        interrupted: inp.interrupted,
        aborted: inp.aborted,
        target: TargetInfo {
            url: inp.url.into(),
            spawned: inp.spawned,
        },
        requests,
        workers,
        auth,
        logins,
        restarts,
        phases,
        latency_ms,
        connection_wait_ms,
        expectations,
        findings,
        server_log,
        timeline: d.timeline.buckets(inp.duration_s),
        lifetime: inp.lifetime,
        generator: None,
        histograms: Some(histograms),
        shard: None,
        not_kept: 0,
        browser: None,
    }
}

/// A finding within what the scenario allows is a warning; beyond it (its expectation
/// failed), an error.
pub(crate) fn grade_findings(findings: &mut [Finding], expectations: &[Check]) {
    for f in findings.iter_mut() {
        f.severity = if fails_kind(expectations, f.kind) {
            Severity::Error
        } else {
            Severity::Warning
        };
    }
}

/// What the load saw while the one restart was under way: "ready again after 9.6 s" alone
/// read as 9.6 s of downtime on Calibre-Web, where nginx kept serving from the other replica
/// all along and the figure was the restart command's own time. Empty with several restarts
/// (their windows share one phase) or no request in the window.
fn during_restart_line(r: &Report) -> String {
    let during = r.phases.iter().find(|p| p.name == "during_restart");
    match (r.restarts.len(), during) {
        (1, Some(p)) if p.requests > 0 && p.errors == 0 => format!(
            " (that is how long the restart took: the {} pages and probes sent meanwhile were all answered)",
            p.requests
        ),
        (1, Some(p)) if p.requests > 0 => format!(
            " ({} of the {} pages and probes sent meanwhile failed)",
            p.errors, p.requests
        ),
        _ => String::new(),
    }
}

/// Pages and probes (the phases count them; `requests.total` also counts logins and logouts).
fn pages_and_probes(r: &Report) -> u64 {
    r.phases.iter().map(|p| p.requests).sum()
}

/// "652 total (632 pages and probes, 20 for logins and logouts), 642 ok, 0 errors, 10 neither
/// (...)": every request in one of ok, errors or neither, so the figures add up.
fn requests_text(r: &Report) -> String {
    let q = &r.requests;
    let traffic = pages_and_probes(r);
    let mut text = format!("{} total", q.total);
    if traffic < q.total {
        text.push_str(&format!(
            " ({traffic} pages and probes, {} for logins and logouts)",
            q.total - traffic
        ));
    }
    text.push_str(&format!(", {} ok, {} errors", q.ok, q.errors));
    let neither = q.total.saturating_sub(q.ok + q.errors);
    if neither > 0 {
        text.push_str(&format!(
            ", {neither} neither (refused logins, pages without the CSRF token, 401/403)"
        ));
    }
    text.push_str(&format!(" ({:.1}/s)", q.per_second));
    text
}

impl Report {
    /// No login worked and logins failed: no session was measured (exit 4, not 1). The same
    /// rule as the checks' "not measured" (`Figures::nothing_measured`).
    pub fn nothing_measured(&self) -> bool {
        Figures::nothing_measured(&self.findings, self.logins.ok, Counts::default())
    }
}

/// The summary figures every format shows, in order, as (label, text).
pub fn key_figures(r: &Report) -> Vec<(&'static str, String)> {
    let l = &r.latency_ms;
    let mut rows = vec![
        ("target", r.target.url.clone()),
        ("started", r.started_at.clone()),
        ("duration", format!("{:.1} s", r.duration_s)),
        ("requests", requests_text(r)),
        (
            "logins",
            format!(
                "{} ok, {} failed, {} deliberate logouts",
                r.logins.ok, r.logins.failed, r.logins.logouts
            ),
        ),
        (
            "probes",
            format!(
                "{} total: {} authenticated, {} anonymous",
                r.auth.probes, r.auth.authenticated, r.auth.unauthenticated
            ),
        ),
        (
            "latency",
            if pages_and_probes(r) == 0 {
                "not measured: no page or probe was sent".to_string()
            } else {
                format!(
                    "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
                    l.p50, l.p90, l.p99, l.max
                )
            },
        ),
        (
            "distinct workers",
            match r.workers.distinct_pids {
                0 => "none known: no answer named its worker".to_string(),
                n => n.to_string(),
            },
        ),
    ];
    if let Some(w) = &r.connection_wait_ms {
        // Right after the latency: the part of it that was sesscheck's own queue.
        rows.insert(
            rows.len() - 1,
            (
                "connection wait",
                format!(
                    "p50 {} ms, p99 {} ms, max {} ms (part of the latency: queued in sesscheck for one of the [load] max_connections connections)",
                    w.p50, w.p99, w.max
                ),
            ),
        );
    }
    if let Some(g) = &r.generator {
        rows.push(("generator", generator_line(g)));
    }
    if let Some(sh) = &r.shard {
        rows.push(("shard", sh.clone()));
    }
    for rs in &r.restarts {
        let mut down = rs
            .downtime_s
            .map(|d| format!("answered again after {d:.2} s"))
            .unwrap_or_else(|| "never came back".into());
        if let Some(all) = rs.all_workers_s {
            down.push_str(&format!(", all workers after {all:.2} s"));
        }
        if let Some(back) = rs.users_back_s {
            down.push_str(&format!(
                ", its users served logged in again within {back:.2} s"
            ));
        }
        down.push_str(&during_restart_line(r));
        rows.push((
            "restart",
            format!("at {:.1} s into the load by {}: {down}", rs.at_s, rs.method),
        ));
    }
    if r.server_log.matches > 0 {
        rows.push((
            "server log",
            format!(
                "{} lines match the interrupted pattern",
                r.server_log.matches
            ),
        ));
    }
    if r.not_kept > 0 {
        rows.push((
            "not analysed",
            format!(
                "{} unusual requests past the first {} were counted but not examined: findings describe the first ones",
                r.not_kept,
                crate::observe::digest::MAX_KEPT
            ),
        ));
    }
    rows
}

/// Replace every secret (passwords, cookie values) with a marker, in every form it may take
/// (see `redact::Redactor`).
/// What the open-loop generator did, and when the cap on connections held it back, why: the
/// target answered slower than the rate needs (by Little's law, in flight = rate × latency).
fn generator_line(g: &Generator) -> String {
    let mut line = format!(
        "{}: {:.0}/s asked, {:.0}/s sent, {} late sends, max lag {:.1} ms",
        g.mode, g.target_rate, g.achieved_rate, g.late_sends, g.max_lag_ms
    );
    if g.waited_for_connection > 0 {
        line.push_str(&format!(
            "; {} waited for one of the {} connections ([load] max_connections): the target \
             answered slower than {:.0}/s needs with {} in flight, and their wait counts in \
             the latency",
            g.waited_for_connection, g.max_connections, g.target_rate, g.max_connections
        ));
    }
    line
}

#[cfg(test)]
pub fn redact(text: &str, secrets: &[String]) -> String {
    crate::util::redact::Redactor::new(secrets).redact(text)
}

/// Server log lines can carry cookies or tokens: keep the words, drop the values.
pub fn scrub_log_line(line: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r#"(?i)\b(cookie|set-cookie|authorization|sessionid|session|csrftoken|password|token)(\s*[:=]\s*)("[^"]*"|[^\s;,&]+)"#)
            .expect("static regex")
    });
    re.replace_all(line, "$1$2[REDACTED]").into_owned()
}

/// Check before the load that reports can be written into `dir` (created if missing): a run
/// must not find out only at its end that its report has nowhere to go.
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating report directory {}", dir.display()))?;
    let probe = dir.join(format!(".sesscheck-write-check-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"ok"));
    let _ = std::fs::remove_file(&probe);
    written.with_context(|| format!("cannot write reports into {}", dir.display()))
}

/// Report file names keep at most this many characters of the scenario's name.
const MAX_NAME: usize = 80;

/// Write the report as JSON (and the other formats) into `dir`; returns the paths written.
/// Names are `<scenario>-<time>[-shardIofN]`, with `-2`, `-3`, ... when that is taken: two
/// runs in the same second (two shards, two CI jobs) never overwrite each other. The JSON file
/// is created first and exclusively, so it is what claims a name.
pub fn write_all(report: &Report, dir: &Path, secrets: &[String]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating report directory {}", dir.display()))?;
    let stamp: String = report
        .started_at
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect();
    let mut base: String = file_safe(&report.scenario).chars().take(MAX_NAME).collect();
    base = format!("{base}-{stamp}");
    if let Some(shard) = &report.shard {
        base.push_str(&format!("-shard{}", shard.replace('/', "of")));
    }
    let redactor = crate::util::redact::Redactor::new(secrets);
    let renderings = [
        (
            "json",
            serde_json::to_string_pretty(report).context("serialising the report")?,
        ),
        ("junit.xml", junit::render(report)?),
        ("md", markdown::render(report)),
        ("html", html::render(report)),
    ];
    // A name is claimed by creating its files exclusively, not by looking first: runs that
    // finish in the same second (shards, parallel CI jobs) each get their own name.
    for n in 1..=1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        match claim(dir, &name, &renderings) {
            Ok(files) => {
                let mut written = Vec::new();
                for ((path, mut file), (_, text)) in files.into_iter().zip(&renderings) {
                    std::io::Write::write_all(&mut file, redactor.redact(text).as_bytes())
                        .with_context(|| format!("writing {}", path.display()))?;
                    written.push(path);
                }
                return Ok(written);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("writing a report into {}", dir.display()))
            }
        }
    }
    anyhow::bail!("no free report name {base}-N in {}", dir.display())
}

/// Create every file of report `name` exclusively; if one exists already, remove the ones
/// this call created and give back that error (the name belongs to another run).
fn claim(
    dir: &Path,
    name: &str,
    renderings: &[(&str, String)],
) -> std::io::Result<Vec<(PathBuf, std::fs::File)>> {
    let mut files = Vec::new();
    for (extension, _) in renderings {
        let path = dir.join(format!("{name}.{extension}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => files.push((path, f)),
            Err(e) => {
                for (p, _) in &files {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        }
    }
    Ok(files)
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Read a saved report (for `sesscheck report`).
pub fn load(path: &Path) -> Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a sesscheck JSON report", path.display()))
}

/// A small failing report with every section filled, for the renderers' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    fn bucket(t_s: f64, pids: &[(&str, u64)], anonymous: u64, p99_ms: f64) -> Bucket {
        let answered: u64 = pids.iter().map(|p| p.1).sum();
        Bucket {
            t_s,
            requests: answered + 1,
            errors: 1,
            authenticated: answered.saturating_sub(anonymous),
            anonymous,
            p50_ms: p99_ms / 4.0,
            p99_ms,
            pids: pids.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
        }
    }

    fn check(name: &str, passed: bool, message: &str) -> Check {
        Check {
            name: name.into(),
            limit: "<= 0".into(),
            actual: if passed { 0.0 } else { 3.0 },
            passed,
            message: message.into(),
            op: None,
            limit_value: None,
            counts: None,
            measured: true,
        }
    }

    fn finding(kind: &str, severity: Severity, message: &str) -> Finding {
        Finding {
            kind: kind.parse().unwrap(),
            severity,
            count: 3,
            first_at_s: 1.25,
            message: message.into(),
            example: serde_json::json!({"vu": 1, "pid": 101, "path": "/api/me"}),
        }
    }

    pub fn sample_report() -> Report {
        Report {
            sesscheck_version: "0.1.0".into(),
            scenario: "sample".into(),
            verdict: "fail".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_s: 3.0,
            interrupted: false,
            aborted: None,
            target: TargetInfo {
                url: "http://127.0.0.1:8765".into(),
                spawned: None,
            },
            requests: Requests {
                total: 30,
                ok: 27,
                errors: 3,
                per_second: 10.0,
            },
            workers: Workers {
                distinct_pids: 2,
                pids: [("101".to_string(), 14), ("102".to_string(), 13)].into(),
            },
            auth: Auth {
                probes: 27,
                authenticated: 24,
                unauthenticated: 3,
            },
            logins: Logins::default(),
            restarts: vec![RestartInfo {
                at_s: 1.0,
                method: "signal".into(),
                downtime_s: Some(0.5),
                all_workers_s: None,
                users_back_s: None,
            }],
            phases: vec![PhaseStats {
                name: "before_restart".into(),
                requests: 30,
                ..Default::default()
            }],
            latency_ms: Latency::default(),
            connection_wait_ms: None,
            expectations: vec![
                check(
                    "max_logouts",
                    false,
                    "unexplained logouts: 3, over the limit",
                ),
                check("max_error_rate", true, "error rate: 0 (limit 0)"),
            ],
            findings: vec![
                finding("logout", Severity::Error, "users lost their session"),
                finding("worker_coverage", Severity::Warning, "few workers answered"),
            ],
            server_log: ServerLogInfo::default(),
            timeline: vec![
                bucket(0.0, &[("101", 5), ("102", 4)], 0, 8.0),
                bucket(1.0, &[("101", 4), ("102", 4)], 3, 40.0),
                bucket(2.0, &[("101", 5), ("102", 5)], 0, 9.0),
            ],
            lifetime: None,
            generator: None,
            histograms: None,
            shard: None,
            not_kept: 0,
            browser: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_writes_every_format_redacted() {
        let mut r = testing::sample_report();
        r.findings[0].message = "cookie value s3cr3t-cookie leaked".into();
        let dir = std::env::temp_dir().join(format!("sesscheck-write-all-{}", std::process::id()));
        let written = write_all(&r, &dir, &["s3cr3t-cookie".into()]).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let base = "sample-20260101000000";
        for ext in ["json", "junit.xml", "md", "html"] {
            assert!(names.contains(&format!("{base}.{ext}")), "{names:?}");
        }
        for path in &written {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(!text.contains("s3cr3t-cookie"), "{}", path.display());
            assert!(text.contains("[REDACTED]"), "{}", path.display());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Re-encode a histogram's V2 bytes after `edit`, deflated like `encode_histogram`.
    fn tampered(edit: impl Fn(&mut Vec<u8>)) -> String {
        use base64::Engine;
        use hdrhistogram::serialization::{Serializer, V2Serializer};
        use std::io::Write;
        let mut h = new_histogram();
        h.record(1234).unwrap();
        let mut plain = Vec::new();
        V2Serializer::new().serialize(&h, &mut plain).unwrap();
        edit(&mut plain);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap();
        let deflated = z.finish().unwrap();
        let mut out = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        out.extend((deflated.len() as u32).to_be_bytes());
        out.extend(deflated);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    #[test]
    fn a_histogram_cannot_claim_more_than_it_holds() {
        // Untouched, it decodes: the tampering below is what is refused.
        assert_eq!(decode_histogram(&tampered(|_| {})).unwrap().len(), 1);
        for claim in [512u32 << 20, u32::MAX] {
            let payload = tampered(|b| b[4..8].copy_from_slice(&claim.to_be_bytes()));
            let e = decode_histogram(&payload).unwrap_err().to_string();
            assert!(e.contains("payload bytes"), "{e}");
        }
        // Bounds that would make the decoder allocate gigabytes of counts.
        let wide = tampered(|b| b[24..32].copy_from_slice(&(u64::MAX / 2).to_be_bytes()));
        let e = decode_histogram(&wide).unwrap_err().to_string();
        assert!(e.contains("not sesscheck's"), "{e}");
        let digits = tampered(|b| b[12..16].copy_from_slice(&5u32.to_be_bytes()));
        assert!(decode_histogram(&digits).is_err());
        // The outer length field is checked against the bytes too.
        use base64::Engine;
        let mut outer = base64::engine::general_purpose::STANDARD
            .decode(tampered(|_| {}))
            .unwrap();
        outer[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let e = decode_histogram(&base64::engine::general_purpose::STANDARD.encode(outer))
            .unwrap_err()
            .to_string();
        assert!(e.contains("compressed bytes"), "{e}");
        assert!(decode_histogram(&"A".repeat(MAX_HISTOGRAM_TEXT + 4)).is_err());
    }

    #[test]
    fn redaction_and_log_scrubbing() {
        assert_eq!(redact("pw=hunter2!", &["hunter2".into()]), "pw=[REDACTED]!");
        let tricky = "a&b<\"c'|".to_string();
        let mut r = testing::sample_report();
        r.scenario = tricky.clone();
        r.findings[0].message = format!("password {tricky} seen");
        r.expectations[0].message = format!("password {tricky} seen");
        for text in [
            html::render(&r),
            junit::render(&r).unwrap(),
            markdown::render(&r),
            serde_json::to_string(&r).unwrap(),
        ] {
            let redacted = redact(&text, std::slice::from_ref(&tricky));
            assert!(
                !redacted.contains("a&") && !redacted.contains("b<"),
                "{redacted}"
            );
        }
        let line = "GET / Cookie: session=abc123; other=1 password=x";
        let s = scrub_log_line(line);
        assert!(!s.contains("abc123") && !s.contains("password=x"), "{s}");
    }
}
