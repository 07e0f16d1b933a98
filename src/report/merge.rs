//! `sesscheck merge`: combine the reports of shards (`sesscheck run --shard I/N`) into one.
//!
//! Counts are summed; latency percentiles are recomputed from the shards' histograms merged
//! exactly (each report carries them serialized); PIDs are unioned; findings are combined by
//! kind (counts summed, the earliest occurrence kept as the example); expectations are
//! recomputed on the combined figures and the verdict fails if any shard failed or any
//! combined expectation fails. Timeline buckets are summed; their p50/p99 are the worst of the
//! shards (buckets carry no histograms), which is an upper bound, not an exact figure.

use super::{
    decode_histogram, encode_histogram, ms, new_histogram, round3, Bucket, Check, Generator,
    Histograms, Latency, PhaseStats, Report,
};
use crate::judge::expectations::{grade, Counts, Expectation, Figure, Figures, NotCounted, Op};
use crate::judge::finding::{Finding, Severity};
use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// Merge shard reports. `names` label them in error messages (file names).
pub fn merge(reports: &[Report], names: &[String]) -> Result<Report> {
    let Some(first) = reports.first() else {
        bail!("nothing to merge: give at least one report");
    };
    let name = |i: usize| {
        names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("#{}", i + 1))
    };
    for (i, r) in reports.iter().enumerate() {
        if r.scenario != first.scenario {
            bail!(
                "{} is of scenario {:?}, {} of {:?}: only shards of one scenario can be merged",
                name(i),
                r.scenario,
                name(0),
                first.scenario
            );
        }
    }

    // Histograms: exact merge.
    let mut overall = new_histogram();
    // Per shard: its requests, and its connection-wait histogram if some request waited.
    let mut waits: Vec<(u64, Option<Histogram<u64>>)> = Vec::new();
    let mut phase_h: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for (i, r) in reports.iter().enumerate() {
        let h = r.histograms.as_ref().with_context(|| {
            format!(
                "{} carries no latency histograms (written by an older sesscheck?): run it again",
                name(i)
            )
        })?;
        let o = decode_histogram(&h.overall).with_context(|| format!("{}: overall", name(i)))?;
        overall
            .add(&o)
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", name(i)))?;
        let wait = match &h.connection_wait {
            Some(text) => Some(
                decode_histogram(text).with_context(|| format!("{}: connection_wait", name(i)))?,
            ),
            None => None,
        };
        waits.push((o.len(), wait));
        for (p, text) in &h.phases {
            let ph = decode_histogram(text).with_context(|| format!("{}: phase {p}", name(i)))?;
            phase_h
                .entry(p.clone())
                .or_insert_with(new_histogram)
                .add(&ph)
                .map_err(|e| anyhow::anyhow!("{}: {e:?}", name(i)))?;
        }
    }

    let mut m = first.clone();
    m.started_at = reports
        .iter()
        .map(|r| r.started_at.clone())
        .min()
        .unwrap_or_default();
    m.duration_s = reports.iter().map(|r| r.duration_s).fold(0.0, f64::max);
    m.interrupted = reports.iter().any(|r| r.interrupted);
    m.aborted = reports.iter().find_map(|r| r.aborted.clone());

    m.requests = Default::default();
    m.auth = Default::default();
    m.logins = Default::default();
    m.workers = Default::default();
    m.server_log = Default::default();
    for r in reports {
        m.requests.total += r.requests.total;
        m.requests.ok += r.requests.ok;
        m.requests.errors += r.requests.errors;
        // Shards run side by side: their rates add up.
        m.requests.per_second += r.requests.per_second;
        m.auth.probes += r.auth.probes;
        m.auth.authenticated += r.auth.authenticated;
        m.auth.unauthenticated += r.auth.unauthenticated;
        m.logins.attempts += r.logins.attempts;
        m.logins.ok += r.logins.ok;
        m.logins.failed += r.logins.failed;
        m.logins.logouts += r.logins.logouts;
        for (pid, n) in &r.workers.pids {
            *m.workers.pids.entry(pid.clone()).or_default() += n;
        }
        m.server_log.matches += r.server_log.matches;
        for (p, n) in &r.server_log.by_phase {
            *m.server_log.by_phase.entry(p.clone()).or_default() += n;
        }
        if m.server_log.example.is_none() {
            m.server_log.example = r.server_log.example.clone();
        }
    }
    m.requests.per_second = round3(m.requests.per_second);
    m.workers.distinct_pids = m.workers.pids.len();
    m.restarts = reports.iter().flat_map(|r| r.restarts.clone()).collect();
    m.restarts.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));

    // Phases: counts summed, percentiles from the merged histograms.
    let mut phases: BTreeMap<String, PhaseStats> = BTreeMap::new();
    for p in reports.iter().flat_map(|r| &r.phases) {
        let s = phases.entry(p.name.clone()).or_insert_with(|| PhaseStats {
            name: p.name.clone(),
            ..Default::default()
        });
        s.requests += p.requests;
        s.errors += p.errors;
        s.logouts += p.logouts;
    }
    // Keep the shards' phase order (load, before, during, after).
    let order: Vec<String> = {
        let mut seen = Vec::new();
        for p in reports.iter().flat_map(|r| &r.phases) {
            if !seen.contains(&p.name) {
                seen.push(p.name.clone());
            }
        }
        seen
    };
    m.phases = order
        .iter()
        .filter_map(|n| phases.remove(n))
        .map(|mut s| {
            if let Some(h) = phase_h.get(&s.name) {
                (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms) =
                    (ms(h, 0.5), ms(h, 0.9), ms(h, 0.99), ms(h, 1.0));
            }
            s
        })
        .collect();
    m.latency_ms = Latency::of(&overall);
    let connection_wait = merge_waits(waits)?;
    m.connection_wait_ms = connection_wait.as_ref().map(Latency::of);
    m.histograms = Some(Histograms {
        overall: encode_histogram(&overall),
        connection_wait: connection_wait.as_ref().map(encode_histogram),
        phases: phase_h
            .iter()
            .map(|(k, h)| (k.clone(), encode_histogram(h)))
            .collect(),
    });

    m.findings = merge_findings(reports.iter().flat_map(|r| r.findings.iter()));
    m.timeline = merge_timeline(reports.iter().map(|r| r.timeline.as_slice()));
    m.generator = merge_generators(reports.iter().filter_map(|r| r.generator.as_ref()));
    m.not_kept = reports.iter().map(|r| r.not_kept).sum();

    // Expectations on the combined figures.
    let traffic: u64 = m.phases.iter().map(|p| p.requests).sum();
    let mut names_in_order: Vec<String> = Vec::new();
    for c in reports.iter().flat_map(|r| &r.expectations) {
        if !names_in_order.contains(&c.name) {
            names_in_order.push(c.name.clone());
        }
    }
    m.expectations = names_in_order
        .iter()
        .map(|n| {
            let shards: Vec<&Check> = reports
                .iter()
                .flat_map(|r| &r.expectations)
                .filter(|c| &c.name == n)
                .collect();
            combined_check(n, &shards, &m, traffic)
        })
        .collect();
    super::grade_findings(&mut m.findings, &m.expectations);
    let passed = reports.iter().all(|r| r.verdict == "pass")
        && m.expectations.iter().all(|c| c.passed)
        && m.aborted.is_none();
    m.verdict = if passed { "pass" } else { "fail" }.into();
    let labels: Vec<String> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| r.shard.clone().unwrap_or_else(|| name(i)))
        .collect();
    m.shard = Some(format!("merged: {}", labels.join(", ")));
    Ok(m)
}

/// The shards' connection waits as one histogram, None if no request of any shard waited. A
/// shard without one waited for nothing: its requests count as waits of 0.
fn merge_waits(waits: Vec<(u64, Option<Histogram<u64>>)>) -> Result<Option<Histogram<u64>>> {
    if waits.iter().all(|(_, w)| w.is_none()) {
        return Ok(None);
    }
    let mut all = new_histogram();
    for (requests, wait) in waits {
        match wait {
            Some(w) => all
                .add(&w)
                .map_err(|e| anyhow::anyhow!("connection_wait: {e:?}"))?,
            None => all
                .record_n(0, requests)
                .map_err(|e| anyhow::anyhow!("connection_wait: {e:?}"))?,
        }
    }
    Ok(Some(all))
}

/// Findings by kind: counts summed, the earliest occurrence's message and example kept.
pub fn merge_findings<'a>(all: impl Iterator<Item = &'a Finding>) -> Vec<Finding> {
    let mut by_kind: Vec<Finding> = Vec::new();
    for f in all {
        match by_kind.iter_mut().find(|g| g.kind == f.kind) {
            Some(g) => {
                let count = g.count + f.count;
                if f.first_at_s < g.first_at_s {
                    *g = f.clone();
                }
                g.count = count;
                if f.severity == Severity::Error {
                    g.severity = Severity::Error;
                }
            }
            None => by_kind.push(f.clone()),
        }
    }
    by_kind
}

fn merge_timeline<'a>(all: impl Iterator<Item = &'a [Bucket]>) -> Vec<Bucket> {
    let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
    for b in all.flatten() {
        let m = buckets
            .entry((b.t_s * 1000.0).round() as i64)
            .or_insert_with(|| Bucket {
                t_s: b.t_s,
                ..Default::default()
            });
        m.requests += b.requests;
        m.errors += b.errors;
        m.authenticated += b.authenticated;
        m.anonymous += b.anonymous;
        m.p50_ms = m.p50_ms.max(b.p50_ms);
        m.p99_ms = m.p99_ms.max(b.p99_ms);
        for (pid, n) in &b.pids {
            *m.pids.entry(pid.clone()).or_default() += n;
        }
    }
    buckets.into_values().collect()
}

fn merge_generators<'a>(mut all: impl Iterator<Item = &'a Generator>) -> Option<Generator> {
    let mut g = all.next()?.clone();
    for o in all {
        g.target_rate += o.target_rate;
        g.achieved_rate += o.achieved_rate;
        g.sent += o.sent;
        g.late_sends += o.late_sends;
        g.max_lag_ms = g.max_lag_ms.max(o.max_lag_ms);
        // Each shard's process has a cap of its own.
        g.max_connections += o.max_connections;
        g.waited_for_connection += o.waited_for_connection;
    }
    g.target_rate = round3(g.target_rate);
    g.achieved_rate = round3(g.achieved_rate);
    Some(g)
}

/// One expectation recomputed on the combined report, from numbers only: the limit each shard
/// checked against, the merged report's figures, and the counts behind a fraction. A check
/// this version does not know, or one from a report without those numbers (written by
/// earlier versions), keeps the worst shard's figure and passes only if every shard's did.
fn combined_check(name: &str, shards: &[&Check], m: &Report, traffic: u64) -> Check {
    let known = Expectation::named(name);
    let limit = shards.first().and_then(|c| c.limit_value);
    let same_limit = shards.iter().all(|c| c.limit_value == limit);
    // auth_persistence is a fraction of probes: it can be recomputed only from every shard's
    // counts (the error rate's share comes from the merged phases instead).
    let needs_counts = known.is_some_and(|e| e.figure == Figure::AuthPersistence);
    let persistence = shards.iter().try_fold(Counts::default(), |sum, c| {
        let part = c.counts?;
        Some(Counts {
            numerator: sum.numerator + part.numerator,
            denominator: sum.denominator + part.denominator,
        })
    });
    let figures_known = !needs_counts || persistence.is_some();
    if let (Some(e), Some(limit), true, true) = (known, limit, same_limit, figures_known) {
        let figures = Figures {
            findings: Figures::counts_of(&m.findings),
            traffic,
            p99_ms: m.latency_ms.p99,
            p99_wait_ms: m.connection_wait_ms.as_ref().map(|w| w.p99),
            downtimes_s: m.restarts.iter().map(|r| r.downtime_s).collect(),
            distinct_workers: m.workers.distinct_pids,
            persistence: persistence.unwrap_or_default(),
            nothing_measured: Figures::nothing_measured(
                &m.findings,
                m.logins.ok,
                persistence.unwrap_or_default(),
            ),
            not_counted: NotCounted::of(
                m.phases.iter().map(|p| p.errors).sum(),
                m.logins.failed,
                &m.findings,
            ),
        };
        return grade(e, limit, &figures);
    }
    let first = shards.first();
    let at_least = first.and_then(|c| c.op).or(known.map(|e| e.op)) == Some(Op::AtLeast);
    let actuals = shards.iter().map(|c| c.actual);
    let actual = if at_least {
        actuals.fold(f64::INFINITY, f64::min)
    } else {
        actuals.fold(f64::NEG_INFINITY, f64::max)
    };
    let limit_text = first.map(|c| c.limit.clone()).unwrap_or_default();
    Check {
        name: name.to_string(),
        limit: limit_text.clone(),
        actual,
        passed: shards.iter().all(|c| c.passed),
        message: format!(
            "{name}: {actual} over {} shard report(s) (limit {limit_text})",
            shards.len()
        ),
        op: first.and_then(|c| c.op),
        limit_value: if same_limit { limit } else { None },
        counts: None,
        measured: shards.iter().any(|c| c.measured),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Observation, Step};
    use crate::scenario::Expect;

    /// Shards' connection waits merge exactly; a shard that never waited (no histogram)
    /// counts its requests as waits of 0; no shard that waited: none.
    #[test]
    fn connection_waits_merge_with_the_zeros_of_shards_that_never_waited() {
        let mut waited = new_histogram();
        for _ in 0..10 {
            waited.record(100_000).unwrap();
        }
        let merged = merge_waits(vec![(10, Some(waited)), (30, None)])
            .unwrap()
            .unwrap();
        assert_eq!(merged.len(), 40);
        assert_eq!(merged.value_at_quantile(0.5), 0);
        assert!(merged.value_at_quantile(0.9) >= 99_000);
        assert!(merge_waits(vec![(10, None), (30, None)]).unwrap().is_none());
    }

    fn obs(vu: u32, start: u64, lat: u64, pid: u64) -> Observation {
        Observation {
            worker: Some(crate::observe::worker::WorkerId::of_pid(pid)),
            authenticated: Some(true),
            ..Observation::sample(vu, Step::Probe, start, start + lat)
        }
    }

    fn report(obs: &[Observation], findings: Vec<Finding>, expect: &Expect) -> Report {
        super::super::build(super::super::Inputs {
            scenario: "s",
            url: "http://127.0.0.1:1",
            spawned: None,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_s: 2.0,
            digest: &crate::observe::digest::Digest::of(obs, &[], Default::default()),
            restarts: &[],
            findings,
            expect,
            interrupted: false,
            aborted: None,
            server_log: &[],
            server_log_count: 0,
            lifetime: None,
            audits: vec![],
        })
    }

    fn finding(kind: &str, count: u64, at: f64) -> Finding {
        Finding {
            kind: kind.parse().unwrap(),
            severity: Severity::Warning,
            count,
            first_at_s: at,
            message: format!("{kind} at {at}"),
            example: serde_json::Value::Null,
        }
    }

    #[test]
    fn histograms_round_trip() {
        let mut h = new_histogram();
        for v in [1u64, 10, 100, 1000, 123_456] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back, h);
        assert!(decode_histogram("not base64!").is_err());
    }

    #[test]
    fn merging_equals_one_run_over_all_observations() {
        let expect = Expect {
            max_logouts: Some(3),
            ..Default::default()
        };
        // Shard A: fast, PIDs 1 and 2; shard B: slow, PIDs 2 and 3.
        let a: Vec<Observation> = (0..100)
            .map(|i| obs(0, i * 1000, 1000 + i * 10, 1 + i % 2))
            .collect();
        let b: Vec<Observation> = (0..50)
            .map(|i| obs(1, i * 2000, 50_000 + i * 1000, 2 + i % 2))
            .collect();
        let ra = report(&a, vec![finding("logout", 2, 1.5)], &expect);
        let rb = report(&b, vec![finding("logout", 2, 0.5)], &expect);
        assert_eq!(ra.verdict, "pass");
        assert_eq!(rb.verdict, "pass");
        let m = merge(&[ra, rb], &["a".into(), "b".into()]).unwrap();
        let all: Vec<Observation> = a.iter().chain(&b).cloned().collect();
        let whole = report(&all, vec![], &expect);
        assert_eq!(m.requests.total, 150);
        assert_eq!(m.latency_ms.p50, whole.latency_ms.p50);
        assert_eq!(m.latency_ms.p99, whole.latency_ms.p99);
        assert_eq!(m.latency_ms.max, whole.latency_ms.max);
        assert_eq!(m.phases[0].p90_ms, whole.phases[0].p90_ms);
        assert_eq!(m.phases[0].requests, 150);
        assert_eq!(m.workers.distinct_pids, 3);
        assert_eq!(m.workers.pids["2"], 50 + 25);
        assert_eq!(m.auth.probes, 150);
        // Findings by kind: summed, the earliest kept.
        assert_eq!(m.findings.len(), 1);
        assert_eq!(m.findings[0].count, 4);
        assert_eq!(m.findings[0].first_at_s, 0.5);
        assert_eq!(m.findings[0].message, "logout at 0.5");
        // 2 + 2 logouts pass each shard's limit of 3 but not the combined one.
        let c = m
            .expectations
            .iter()
            .find(|c| c.name == "max_logouts")
            .unwrap();
        assert_eq!(c.actual, 4.0);
        assert!(!c.passed);
        assert_eq!(m.verdict, "fail");
        assert_eq!(m.findings[0].severity, Severity::Error);
        assert_eq!(m.timeline.iter().map(|b| b.requests).sum::<u64>(), 150);
    }

    #[test]
    fn a_failed_shard_fails_the_merge_and_bad_input_is_refused() {
        let expect = Expect::default();
        let a = report(&[obs(0, 0, 10, 1)], vec![], &expect);
        let mut b = report(&[obs(1, 0, 10, 1)], vec![], &expect);
        assert_eq!(merge(&[a.clone(), b.clone()], &[]).unwrap().verdict, "pass");
        b.verdict = "fail".into();
        assert_eq!(merge(&[a.clone(), b.clone()], &[]).unwrap().verdict, "fail");
        let mut c = a.clone();
        c.histograms = None;
        assert!(merge(&[a.clone(), c], &[]).is_err());
        let mut d = a.clone();
        d.scenario = "other".into();
        assert!(merge(&[a, d], &[]).is_err());
        assert!(merge(&[], &[]).is_err());
    }

    #[test]
    fn merge_recomputes_from_numbers_not_from_the_words() {
        let expect = Expect {
            auth_persistence: Some(0.5),
            max_p99_ms: Some(30.0),
            max_logouts: Some(3),
            ..Default::default()
        };
        let mut a: Vec<Observation> = (0..40).map(|i| obs(0, i * 1000, 1000, 1)).collect();
        for o in a.iter_mut().take(10) {
            o.authenticated = Some(false);
        }
        let b: Vec<Observation> = (0..20).map(|i| obs(1, i * 1000, 60_000, 2)).collect();
        let shards = [
            report(&a, vec![finding("logout", 2, 1.0)], &expect),
            report(&b, vec![finding("logout", 2, 2.0)], &expect),
        ];
        let plain = merge(&shards, &[]).unwrap();
        // The same shards with every message and limit text reworded, as a later version (or
        // a translation) might write them.
        let reworded: Vec<Report> = shards
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap();
                for c in v["expectations"].as_array_mut().unwrap() {
                    c["message"] = "ganz andere Worte: 7 von 9".into();
                    c["limit"] = "höchstens so viel".into();
                }
                for f in v["findings"].as_array_mut().unwrap() {
                    f["message"] = "reworded".into();
                }
                serde_json::from_value(v).unwrap()
            })
            .collect();
        let merged = merge(&reworded, &[]).unwrap();
        let figures = |r: &Report| -> Vec<(String, f64, bool, Option<Counts>)> {
            r.expectations
                .iter()
                .map(|c| (c.name.clone(), c.actual, c.passed, c.counts))
                .collect()
        };
        assert_eq!(figures(&merged), figures(&plain));
        assert_eq!(merged.verdict, plain.verdict);
        let persistence = |r: &Report| {
            r.expectations
                .iter()
                .find(|c| c.name == "auth_persistence")
                .cloned()
                .unwrap()
        };
        // The shards' counts add up, and the fraction is theirs, not the mean of two fractions.
        let (pa, pb, pm) = (
            persistence(&shards[0]),
            persistence(&shards[1]),
            persistence(&merged),
        );
        let (ca, cb, cm) = (pa.counts.unwrap(), pb.counts.unwrap(), pm.counts.unwrap());
        assert!(ca.denominator > 0 && cb.denominator > 0, "{ca:?} {cb:?}");
        assert_eq!(cm.numerator, ca.numerator + cb.numerator);
        assert_eq!(cm.denominator, ca.denominator + cb.denominator);
        assert_eq!(
            pm.actual,
            round3(cm.numerator as f64 / cm.denominator as f64)
        );
        assert_eq!(pm.limit_value, Some(0.5));
        // 2 + 2 logouts: each shard within its limit of 3, the merge over it.
        let logouts = merged
            .expectations
            .iter()
            .find(|c| c.name == "max_logouts")
            .unwrap();
        assert_eq!((logouts.actual, logouts.passed), (4.0, false));
        // p99 from the merged histograms (shard b is slow), against the number 30.
        let p99 = merged
            .expectations
            .iter()
            .find(|c| c.name == "max_p99_ms")
            .unwrap();
        assert_eq!(p99.actual, merged.latency_ms.p99);
        assert!(!p99.passed && p99.actual > 30.0, "{p99:?}");
        // The merged messages are written anew from the numbers.
        assert!(
            logouts.message.contains("unexplained logouts: 4"),
            "{}",
            logouts.message
        );
    }

    #[test]
    fn a_report_without_numbers_merges_by_its_shards_verdicts() {
        let expect = Expect {
            max_logouts: Some(3),
            ..Default::default()
        };
        let shards: Vec<Report> = [2, 2]
            .into_iter()
            .map(|n| {
                let mut r = report(
                    &[obs(0, 0, 10, 1)],
                    vec![finding("logout", n, 1.0)],
                    &expect,
                );
                for c in &mut r.expectations {
                    (c.op, c.limit_value, c.counts) = (None, None, None);
                }
                r
            })
            .collect();
        let m = merge(&shards, &[]).unwrap();
        let logouts = m
            .expectations
            .iter()
            .find(|c| c.name == "max_logouts")
            .unwrap();
        // Without the limit as a number nothing is recomputed: the worst shard, their verdicts.
        assert_eq!((logouts.actual, logouts.passed), (2.0, true));
    }

    #[test]
    fn generators_add_up() {
        let g = Generator {
            mode: "open".into(),
            target_rate: 100.0,
            achieved_rate: 99.0,
            sent: 300,
            late_sends: 1,
            max_lag_ms: 3.0,
            max_connections: 256,
            waited_for_connection: 4,
        };
        let h = Generator {
            max_lag_ms: 7.0,
            ..g.clone()
        };
        let m = merge_generators([g, h].iter()).unwrap();
        assert_eq!(
            (
                m.target_rate,
                m.achieved_rate,
                m.sent,
                m.late_sends,
                m.max_lag_ms,
                m.max_connections,
                m.waited_for_connection
            ),
            (200.0, 198.0, 600, 2, 7.0, 512, 8)
        );
    }
}
