//! The Chromium process: started by sesscheck in its own process group with a fresh profile
//! folder, driven over the DevTools protocol (chromiumoxide), and killed as a whole group at
//! the end, on Ctrl-C, or when dropped, so no browser process outlives the run.

use super::{watch, Check, JarCookie, Plan, When};
use anyhow::{anyhow, Context, Result};
use chromiumoxide::cdp::browser_protocol::network::{CookieParam, SetCookiesParams};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::Browser;
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

/// How long Chromium may take to open its DevTools port.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Setting up or closing a context or page; a browser that takes longer is stuck.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Flags that work as root, offline, in a container: no sandbox (root), no GPU, nothing that
/// phones home (there is no network but the target).
const FLAGS: [&str; 11] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1024,768",
    "--remote-debugging-port=0",
];

pub struct Chromium {
    /// The guard (`sesscheck __guard`) Chromium runs under: should sesscheck die, even by
    /// SIGKILL, the guard's stdin (`_lifeline`) closes and it stops the whole browser.
    child: tokio::process::Child,
    _lifeline: Option<tokio::process::ChildStdin>,
    /// The browser's process group (its own, so that every helper process goes with it).
    pgid: i32,
    profile: PathBuf,
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
}

impl Chromium {
    /// Start `executable` headless with an empty profile and connect to it.
    pub async fn launch(executable: &Path) -> Result<Chromium> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let profile =
            std::env::temp_dir().join(format!("sesscheck-chromium-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&profile)
            .with_context(|| format!("creating the browser profile {}", profile.display()))?;
        let exe = std::env::current_exe().context("finding sesscheck to guard the browser")?;
        let mut child = tokio::process::Command::new(exe)
            .arg(crate::process::guard::SUBCOMMAND)
            .arg("--stop-timeout-ms")
            .arg("2000")
            .arg("--remove")
            .arg(&profile)
            .arg("--")
            .arg(executable)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", executable.display()))?;
        let pgid = child.id().map(|p| p as i32).unwrap_or(0);
        let lifeline = child.stdin.take();
        // From here on, dropping `me` (a failed launch, Ctrl-C) kills the whole group.
        let mut me = PartialChromium {
            child: Some(child),
            pgid,
            profile: profile.clone(),
        };
        let stderr = me
            .child
            .as_mut()
            .and_then(|c| c.stderr.take())
            .context("the browser's stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut said = Vec::new();
        let ws = tokio::time::timeout(LAUNCH_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Some(url.trim().to_string());
                }
                if said.len() < 20 {
                    said.push(line);
                }
            }
            None
        })
        .await;
        let ws = match ws {
            Ok(Some(ws)) => ws,
            Ok(None) => {
                return Err(anyhow!(
                    "{} exited before opening its DevTools port: {}",
                    executable.display(),
                    said.join(" / ")
                ))
            }
            Err(_) => {
                return Err(anyhow!(
                    "{} did not open its DevTools port within {}s",
                    executable.display(),
                    LAUNCH_TIMEOUT.as_secs()
                ))
            }
        };
        // Keep reading its stderr, or a chatty browser blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (browser, mut handler) = Browser::connect(ws)
            .await
            .context("connecting to the browser's DevTools port")?;
        let handler = tokio::spawn(async move {
            // Errors here are single messages the handler could not use; it goes on.
            while handler.next().await.is_some() {}
        });
        Ok(Chromium {
            child: me.child.take().context("browser process")?,
            _lifeline: lifeline,
            pgid,
            profile,
            browser,
            handler,
        })
    }

    /// One user's check: a fresh context holding `cookies`, each of the plan's pages in turn.
    pub async fn check(
        &self,
        plan: &Plan,
        cookies: &[JarCookie],
        when: When,
        vu: usize,
        at_s: f64,
        stop: &CancellationToken,
    ) -> Check {
        let mut check = Check {
            when,
            vu,
            at_s,
            cookies: cookies.len(),
            pages: Vec::new(),
            error: None,
        };
        let context = match timed(
            self.browser
                .create_browser_context(CreateBrowserContextParams::default()),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                check.error = Some(format!("creating a browser context: {e:#}"));
                return check;
            }
        };
        for path in &plan.pages {
            if stop.is_cancelled() {
                break;
            }
            match self.open(plan, &context, cookies, path, stop).await {
                Ok(visit) => check.pages.push(visit),
                Err(e) => {
                    check.error = Some(format!("opening {path}: {e:#}"));
                    break;
                }
            }
        }
        let _ = timed(self.browser.dispose_browser_context(context)).await;
        check
    }

    /// A new tab in `context` with the user's cookies, watched on `path` until it settles.
    async fn open(
        &self,
        plan: &Plan,
        context: &chromiumoxide::cdp::browser_protocol::browser::BrowserContextId,
        cookies: &[JarCookie],
        path: &str,
        stop: &CancellationToken,
    ) -> Result<super::PageVisit> {
        let mut target = CreateTargetParams::new("about:blank");
        target.browser_context_id = Some(context.clone());
        let page = timed(self.browser.new_page(target)).await?;
        if !cookies.is_empty() {
            let params: Vec<CookieParam> = cookies
                .iter()
                .map(|c| {
                    let mut p = CookieParam::new(c.name.clone(), c.value.clone());
                    p.url = Some(plan.base.to_string());
                    p.path = Some(c.path.clone());
                    p.secure = Some(c.secure);
                    p.http_only = Some(c.http_only);
                    p
                })
                .collect();
            timed(page.execute(SetCookiesParams::new(params))).await?;
        }
        let visit = watch::visit(&page, plan, path, stop).await;
        let _ = timed(page.close()).await;
        Ok(visit)
    }

    /// Close the browser: ask politely, then kill its process group and remove the profile.
    pub async fn shutdown(mut self) {
        // A browser that closes itself reaps its helper processes; the kill is for the rest.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.browser.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await;
        kill_group(self.pgid);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        self.handler.abort();
        remove_profile(&self.profile);
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // A run that ends any other way (an error, a panic) must not leave a browser behind.
        kill_group(self.pgid);
        remove_profile(&self.profile);
    }
}

/// A browser whose launch has not finished: killed and cleaned up if the launch fails.
struct PartialChromium {
    child: Option<tokio::process::Child>,
    pgid: i32,
    profile: PathBuf,
}

impl Drop for PartialChromium {
    fn drop(&mut self) {
        // Taken by a launch that succeeded: the `Chromium` owns the process from then on.
        if self.child.is_some() {
            kill_group(self.pgid);
            remove_profile(&self.profile);
        }
    }
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn remove_profile(profile: &Path) {
    if !profile.as_os_str().is_empty() {
        // The browser may still be writing for a moment after the kill.
        for _ in 0..5 {
            if std::fs::remove_dir_all(profile).is_ok() || !profile.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A DevTools command with [`COMMAND_TIMEOUT`].
async fn timed<T, E: Into<anyhow::Error>>(
    f: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(COMMAND_TIMEOUT, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(anyhow!(
            "the browser did not answer within {}s",
            COMMAND_TIMEOUT.as_secs()
        )),
    }
}
