//! Watching one page until it settles: the load event has fired, no request has been in
//! flight for [`QUIET`], and the selectors are satisfied; or until `settle_timeout`.

use super::{group_requests, PageVisit, Plan, QUIET};
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent, EventResponseReceived,
};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, EventFrameNavigated, EventLoadEventFired, NavigateParams,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use url::Url;

/// How often the settle conditions are looked at.
const TICK: Duration = Duration::from_millis(100);
/// At most this many distinct console messages are kept per page.
const MAX_CONSOLE: usize = 20;

/// Everything the page's events told so far.
#[derive(Default)]
struct Seen {
    /// Request id → (method, path) of requests that have not finished.
    in_flight: HashMap<String, (String, String)>,
    /// Request id → status of its answer, until it finishes.
    status: HashMap<String, u16>,
    done: Vec<(String, String, Option<u16>)>,
    navigations: Vec<String>,
    console: Vec<(String, u64)>,
    load_event: bool,
}

impl Seen {
    fn console_error(&mut self, text: String) {
        let text: String = text.chars().take(300).collect();
        if let Some(c) = self.console.iter_mut().find(|(t, _)| *t == text) {
            c.1 += 1;
        } else if self.console.len() < MAX_CONSOLE {
            self.console.push((text, 1));
        }
    }

    fn finished(&mut self, id: &str, failed: bool) {
        if let Some((method, path)) = self.in_flight.remove(id) {
            let status = self.status.remove(id);
            // A request that failed after its answer began still tells that answer.
            let status = if failed && status.is_none() {
                None
            } else {
                status
            };
            self.done.push((method, path, status));
        }
    }
}

/// The path (and query) of `url` on the target, or the whole URL for another origin.
fn shown_path(base: &Url, url: &str) -> String {
    match Url::parse(url) {
        Ok(u) if u.origin() == base.origin() => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        _ => url.to_string(),
    }
}

pub async fn visit(page: &Page, plan: &Plan, path: &str, stop: &CancellationToken) -> PageVisit {
    let mut visit = PageVisit {
        path: path.to_string(),
        settled: false,
        elapsed_ms: 0.0,
        load_event: false,
        final_url: String::new(),
        requests: Vec::new(),
        in_flight: 0,
        navigations: Vec::new(),
        console_errors: Vec::new(),
        busy_shown: false,
        ready_found: false,
        screenshot_png: None,
        interrupted: false,
        selectors_unmet: Vec::new(),
    };
    let url = match plan.base.join(path) {
        Ok(u) => u,
        Err(e) => {
            visit
                .console_errors
                .push((format!("bad page path: {e}"), 1));
            return visit;
        }
    };
    // Listen before navigating, so the first request is seen too.
    macro_rules! listen {
        ($t:ty) => {
            match page.event_listener::<$t>().await {
                Ok(s) => s,
                Err(e) => {
                    visit
                        .console_errors
                        .push((format!("listening to the page: {e}"), 1));
                    return visit;
                }
            }
        };
    }
    let mut will_send = listen!(EventRequestWillBeSent);
    let mut response = listen!(EventResponseReceived);
    let mut finished = listen!(EventLoadingFinished);
    let mut failed = listen!(EventLoadingFailed);
    let mut loaded = listen!(EventLoadEventFired);
    let mut navigated = listen!(EventFrameNavigated);
    let mut console = listen!(EventConsoleApiCalled);
    let mut thrown = listen!(EventExceptionThrown);
    let mut log = listen!(EventEntryAdded);

    let start = Instant::now();
    let deadline = start + plan.settle_timeout;
    let mut seen = Seen::default();
    let mut last_network = start;
    let navigate = page.execute(NavigateParams::new(url.to_string()));
    tokio::pin!(navigate);
    let mut navigate_done = false;
    let mut tick = tokio::time::interval(TICK);
    loop {
        // Biased, in the order Chromium sends them: each event type has its own channel, and
        // an unbiased select took a request's `loadingFinished` before its `requestWillBeSent`
        // now and then when both were waiting. The finish found nothing in flight, the request
        // was added after it and stayed "in flight" for good: a page that had loaded was
        // reported as never settling. The handler delivers events in protocol order, so a
        // finish that is waiting has its request's send already waiting or taken.
        tokio::select! {
            biased;
            r = &mut navigate, if !navigate_done => {
                navigate_done = true;
                match r {
                    Ok(r) => if let Some(e) = &r.result.error_text {
                        seen.console_error(format!("navigation to {path} failed: {e}"));
                    },
                    Err(e) => seen.console_error(format!("navigation to {path} failed: {e}")),
                }
            }
            Some(e) = will_send.next() => {
                last_network = Instant::now();
                let id = e.request_id.inner().clone();
                if let Some(prev) = &e.redirect_response {
                    // The same request id goes on to the redirect's target.
                    seen.status.insert(id.clone(), prev.status as u16);
                    seen.finished(&id, false);
                }
                if e.request.url.starts_with("http") {
                    seen.in_flight.insert(id, (e.request.method.clone(), shown_path(&plan.base, &e.request.url)));
                }
            }
            Some(e) = response.next() => {
                last_network = Instant::now();
                seen.status.insert(e.request_id.inner().clone(), e.response.status as u16);
            }
            Some(e) = finished.next() => {
                last_network = Instant::now();
                seen.finished(e.request_id.inner(), false);
            }
            Some(e) = failed.next() => {
                last_network = Instant::now();
                seen.finished(e.request_id.inner(), true);
            }
            Some(_) = loaded.next() => seen.load_event = true,
            Some(e) = navigated.next() => {
                if e.frame.parent_id.is_none() {
                    seen.navigations.push(shown_path(&plan.base, &e.frame.url));
                }
            }
            Some(e) = console.next() => {
                if e.r#type == ConsoleApiCalledType::Error {
                    let text = e.args.iter().map(|a| {
                        a.description.clone().or_else(|| a.value.as_ref().map(|v| match v {
                            serde_json::Value::String(s) => s.clone(),
                            v => v.to_string(),
                        })).unwrap_or_default()
                    }).collect::<Vec<_>>().join(" ");
                    seen.console_error(text);
                }
            }
            Some(e) = thrown.next() => {
                let d = &e.exception_details;
                let text = d.exception.as_ref().and_then(|x| x.description.clone()).unwrap_or_else(|| d.text.clone());
                seen.console_error(text);
            }
            Some(e) = log.next() => {
                if e.entry.level == LogEntryLevel::Error {
                    seen.console_error(e.entry.text.clone());
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if stop.is_cancelled() || now >= deadline {
                    break;
                }
                let quiet = seen.in_flight.is_empty() && now.duration_since(last_network) >= QUIET;
                if seen.load_event && quiet {
                    let (ready, busy) = selectors(page, plan).await;
                    if ready && !busy {
                        visit.settled = true;
                        visit.ready_found = ready;
                        break;
                    }
                }
            }
        }
    }
    visit.interrupted = !visit.settled && stop.is_cancelled();
    visit.elapsed_ms = (start.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
    if !visit.settled {
        let (ready, busy) = selectors(page, plan).await;
        visit.ready_found = ready && plan.ready_selector.is_some();
        visit.busy_shown = busy;
        if let (Some(sel), true) = (&plan.busy_selector, busy) {
            visit
                .selectors_unmet
                .push(format!("spinner `{sel}` still shown"));
        }
        if let (Some(sel), false) = (&plan.ready_selector, ready) {
            visit
                .selectors_unmet
                .push(format!("ready selector `{sel}` never appeared"));
        }
        if !stop.is_cancelled() {
            let shot = ScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .build();
            if let Ok(Ok(png)) =
                tokio::time::timeout(Duration::from_secs(5), page.screenshot(shot)).await
            {
                visit.screenshot_png = Some(png);
            }
        }
    }
    if let Ok(Ok(Some(u))) = tokio::time::timeout(Duration::from_secs(2), page.url()).await {
        visit.final_url = u;
    }
    visit.in_flight = seen.in_flight.len();
    visit.load_event = seen.load_event;
    visit.requests = group_requests(&seen.done);
    visit.navigations = seen.navigations;
    visit.console_errors = seen.console;
    visit
}

/// (ready, busy): `ready_selector` matches (true when unset), `busy_selector` matches (false
/// when unset). A page that cannot be asked counts as not ready.
async fn selectors(page: &Page, plan: &Plan) -> (bool, bool) {
    if plan.ready_selector.is_none() && plan.busy_selector.is_none() {
        return (true, false);
    }
    let js = |s: &Option<String>| {
        s.as_ref()
            .map(|s| serde_json::Value::String(s.clone()).to_string())
            .unwrap_or_else(|| "null".into())
    };
    let expr = format!(
        "(() => {{ const r = {}, b = {}; return [r === null || document.querySelector(r) !== null, b !== null && document.querySelector(b) !== null]; }})()",
        js(&plan.ready_selector),
        js(&plan.busy_selector)
    );
    match tokio::time::timeout(Duration::from_secs(2), page.evaluate(expr)).await {
        Ok(Ok(v)) => v.into_value::<(bool, bool)>().unwrap_or_default(),
        _ => (false, false),
    }
}
