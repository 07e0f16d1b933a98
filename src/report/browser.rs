//! The report's `browser` section (present when the scenario has `[browser]`): every browser
//! check, per page its time to settle, final URL, requests grouped by path and status,
//! navigations, console errors, and a screenshot (base64 PNG) of a page that did not settle.

use crate::browser;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrowserSection {
    pub checks: Vec<BrowserCheck>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrowserCheck {
    /// "before_restart", "after_restart" or "mid_run".
    pub when: String,
    pub vu: usize,
    pub at_s: f64,
    /// Cookies the user's jar gave the browser context (names and values are not reported).
    pub cookies: usize,
    pub pages: Vec<BrowserPage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrowserPage {
    pub path: String,
    pub settled: bool,
    /// To settled, or how long it was watched.
    pub elapsed_ms: f64,
    pub load_event: bool,
    pub final_url: String,
    pub requests: Vec<RequestCount>,
    pub in_flight: usize,
    pub navigations: Vec<String>,
    pub console_errors: Vec<ConsoleError>,
    pub busy_shown: bool,
    pub ready_found: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// Base64 PNG, only for a page that did not settle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot_png: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestCount {
    pub method: String,
    pub path: String,
    /// null: the request failed without an answer.
    pub status: Option<u16>,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleError {
    pub message: String,
    pub count: u64,
}

impl RequestCount {
    /// "GET /api/session 401 ×57".
    pub fn text(&self) -> String {
        let status = self
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "failed".into());
        format!("{} {} {status} ×{}", self.method, self.path, self.count)
    }
}

/// The section for these checks; None when there were none (no `[browser]`).
pub fn section(checks: &[browser::Check]) -> Option<BrowserSection> {
    if checks.is_empty() {
        return None;
    }
    Some(BrowserSection {
        checks: checks.iter().map(check).collect(),
    })
}

fn check(c: &browser::Check) -> BrowserCheck {
    BrowserCheck {
        when: c.when.label().into(),
        vu: c.vu,
        at_s: super::round3(c.at_s),
        cookies: c.cookies,
        error: c.error.clone(),
        pages: c.pages.iter().map(page).collect(),
    }
}

fn page(v: &browser::PageVisit) -> BrowserPage {
    BrowserPage {
        path: v.path.clone(),
        settled: v.settled,
        elapsed_ms: v.elapsed_ms,
        load_event: v.load_event,
        final_url: v.final_url.clone(),
        requests: v
            .requests
            .iter()
            .map(|g| RequestCount {
                method: g.method.clone(),
                path: g.path.clone(),
                status: g.status,
                count: g.count,
            })
            .collect(),
        in_flight: v.in_flight,
        navigations: v.navigations.clone(),
        console_errors: v
            .console_errors
            .iter()
            .map(|(m, n)| ConsoleError {
                message: m.clone(),
                count: *n,
            })
            .collect(),
        busy_shown: v.busy_shown,
        ready_found: v.ready_found,
        interrupted: v.interrupted,
        screenshot_png: v
            .screenshot_png
            .as_ref()
            .map(|png| base64::engine::general_purpose::STANDARD.encode(png)),
    }
}
