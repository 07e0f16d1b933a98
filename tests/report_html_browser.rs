//! The HTML report in a real browser: headless Chromium must render the three chart SVGs and
//! a screenshot that is not blank. CI installs Chromium; a machine without it fails this test
//! with the command to install it, rather than skipping it silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const BROKEN: &str = "tests/fixtures/report-broken.json";
/// A blank 1200×2000 page compresses to a few KB; three charts and tables take far more.
const MIN_SCREENSHOT_BYTES: u64 = 40_000;

fn chromium() -> &'static str {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install it with `apt-get install -y chromium` (CI does)"
    );
    CHROMIUM
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sesscheck-html-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The failing fixture rendered to an HTML file by the binary.
fn html_file(dir: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_sesscheck"))
        .args(["report", BROKEN, "--format", "html"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running sesscheck");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("report.html");
    std::fs::write(&path, out.stdout).unwrap();
    path
}

/// Headless Chromium with nothing that reaches the network, killed if it hangs.
fn run_chromium(profile: &Path, args: &[String]) -> Output {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("waiting for chromium").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("reading chromium's output")
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[test]
fn chromium_renders_the_charts() {
    let dir = scratch_dir();
    let html = html_file(&dir);
    let out = run_chromium(
        &dir.join("profile-dom"),
        &["--dump-dom".into(), file_url(&html)],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ["requests-by-pid", "auth", "latency"] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "chart {id} missing from the DOM"
        );
    }
    assert_eq!(
        dom.matches("<svg").count(),
        3,
        "three chart SVGs in the DOM"
    );
    assert!(dom.contains("class=\"series\""), "no series drawn");
}

#[test]
fn chromium_screenshot_is_not_blank() {
    let dir = scratch_dir();
    let html = html_file(&dir);
    let png = dir.join("report.png");
    let _ = std::fs::remove_file(&png);
    let out = run_chromium(
        &dir.join("profile-shot"),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1200,2000".into(),
            file_url(&html),
        ],
    );
    let size = std::fs::metadata(&png)
        .unwrap_or_else(|e| {
            panic!(
                "no screenshot at {} ({e}); chromium said: {}",
                png.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .len();
    assert!(
        size >= MIN_SCREENSHOT_BYTES,
        "screenshot {} is only {size} bytes: blank page?",
        png.display()
    );
}

mod common;

/// `[browser]`: the report of a run whose page got stuck after the restart shows that page's
/// screenshot, embedded (a data: URL, so the file stays self-contained), and Chromium renders
/// the report with it.
#[test]
fn chromium_shows_the_stuck_pages_screenshot() {
    let (out, _dir) = common::run_edited("scenarios/browser-restart-broken.toml", &[], &[], &[]);
    assert_eq!(out.code, 1, "{}", out.explain());
    let (_, html) = out
        .files
        .iter()
        .find(|(p, _)| p.extension().is_some_and(|x| x == "html"))
        .expect("an HTML report");
    // The run's report folder is gone with the run: the text was kept.
    let dir = scratch_dir();
    let html_path = &dir.join("browser-report.html");
    std::fs::write(html_path, html).unwrap();
    let out = run_chromium(
        &dir.join("profile-browser-panel"),
        &["--dump-dom".into(), file_url(html_path)],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<h2>Browser checks</h2>"), "no browser panel");
    assert_eq!(
        dom.matches("<figure class=\"screenshot\">").count(),
        2,
        "one screenshot per stuck page (2 users after the restart)"
    );
    assert!(
        dom.contains("/app (after_restart, user"),
        "caption names the page"
    );
    // The embedded image is a real PNG of the browser's 1024×768 window.
    let start = html
        .find("data:image/png;base64,")
        .expect("an embedded PNG")
        + 22;
    let b64: String = html[start..].chars().take_while(|c| *c != '"').collect();
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .expect("base64");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(width >= 800 && height >= 600, "{width}×{height}");
    assert!(png.len() > 2_000, "a {} byte PNG is blank", png.len());
}
