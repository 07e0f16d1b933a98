//! Command-line interface (clap). Exit codes are part of the contract (see README).
//!
//! The top of the crate: parses arguments and hands each subcommand to the stage that owns
//! it; `init` (a first scenario from a running app) and `shell` (completions, man page) live
//! here too. May import anything; nothing imports it.

pub mod init;
pub mod shell;

use crate::run::{Outcome, Overrides, RunError};
use crate::scenario::Scenario;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
EXIT CODES:
  0    every expectation held
  1    the run completed and found problems (findings over their limits)
  2    bad usage or an invalid scenario file
  3    the target could not be reached, started or restarted
  4    nothing measured: every login failed (a wrong password, path or field?)
  130  interrupted by Ctrl-C / SIGTERM (the report is still written)

EXAMPLES:
  sesscheck run scenarios/multiworker.toml           # spawns the built-in demo target
  sesscheck run scenarios/restart.toml --users 50    # restart mid-run, more users
  sesscheck run my-app.toml --url http://127.0.0.1:8000 --quiet
  sesscheck validate my-app.toml
  sesscheck report reports/multiworker-*.json --format md >> \"$GITHUB_STEP_SUMMARY\"
  sesscheck compare main.json branch.json            # exit 1 if the branch made things worse
  sesscheck target --workers 4 --store memory        # a demo app with the classic bug";

#[derive(Parser)]
#[command(
    name = "sesscheck",
    version,
    about = "Find session bugs across workers and restarts",
    long_about = "sesscheck logs in many virtual users (each with its own cookie jar), sends cookie-carrying \
requests across the target's worker processes, asks the app's debug endpoint which worker answered and whether \
the user is still authenticated, restarts the target mid-run if asked, and reports every logout, \
SessionInterrupted error and infinite load.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a scenario against its target and report what broke.
    #[command(after_help = AFTER_HELP)]
    Run(RunArgs),
    /// Parse and check a scenario file without running it (exit 0 or 2).
    Validate {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
    /// Re-render a saved JSON report.
    Report {
        /// A JSON report written by `sesscheck run`.
        report: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show what changed between two saved reports (A the baseline, B the new run).
    #[command(after_help = crate::report::compare::WORSE_RULE)]
    Compare {
        /// The baseline JSON report.
        a: PathBuf,
        /// The JSON report to judge against it.
        b: PathBuf,
    },
    /// Combine the JSON reports of shards (`run --shard I/N`) into one: counts summed,
    /// histograms merged exactly, findings combined, verdict recomputed (exit 0 pass, 1 fail).
    Merge {
        /// Shard reports written by `sesscheck run --shard I/N`.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write the merged JSON report here (default: print it on stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the built-in demo target: a multi-process web app with real logins and sessions,
    /// whose session faults can be switched on and off.
    Target(crate::demo::TargetArgs),
    /// Look at a running app and write a first scenario for it: the login form (fields, CSRF),
    /// a debug endpoint or worker header, and, with --user, where a good login lands.
    Init(init::InitArgs),
    /// Internal: guards a target that `run` spawns (see src/process/guard.rs).
    #[command(name = "__guard", hide = true)]
    Guard(crate::process::guard::GuardArgs),
    /// Print a shell completion script (bash, zsh or fish); see README for where to put it.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `sesscheck man > sesscheck.1`.
    Man,
}

/// `sesscheck run`'s options. Each one can also come from a `SESSCHECK_*` environment
/// variable (shown in `--help`), so one scenario serves staging and production in CI without
/// editing files. Precedence: the flag, then the variable, then the scenario file.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The scenario file (TOML); see scenarios/ for commented examples.
    #[arg(env = "SESSCHECK_SCENARIO")]
    pub scenario: PathBuf,
    /// Use this base URL instead of [target] url (e.g. http://127.0.0.1:8000).
    #[arg(long, env = "SESSCHECK_URL")]
    pub url: Option<String>,
    /// Where to write the reports.
    #[arg(long, env = "SESSCHECK_REPORT_DIR", default_value = "reports")]
    pub report_dir: PathBuf,
    /// Override [load] users.
    #[arg(long, env = "SESSCHECK_USERS")]
    pub users: Option<usize>,
    /// Override [load] duration (e.g. 30s, 2m).
    #[arg(long, env = "SESSCHECK_DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Run only shard I of N (1-based): the users whose number ≡ I (mod N), and rate/N of an
    /// open-loop rate. Merge the shards' reports with `sesscheck merge`.
    #[arg(long, env = "SESSCHECK_SHARD", value_name = "I/N")]
    pub shard: Option<String>,
    /// Write a live event stream here as JSON Lines, one flushed line per event (run_started,
    /// login_summary, restart_started, target_ready, finding, tick, run_finished). `-` writes
    /// it on stdout and moves the summary table to stderr.
    #[arg(long, env = "SESSCHECK_EVENTS", value_name = "FILE|-")]
    pub events: Option<PathBuf>,
    /// Print only the verdict line on stdout: no progress, no tables (warnings still go to
    /// stderr).
    #[arg(long, short, env = "SESSCHECK_QUIET")]
    pub quiet: bool,
    /// Also show what a spawned target prints.
    #[arg(long, short, env = "SESSCHECK_VERBOSE")]
    pub verbose: bool,
    /// Threads that drive the load (default: one per core). The users are dealt out over them,
    /// and each thread keeps its users and their connections to itself, as wrk does.
    #[arg(long, env = "SESSCHECK_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

/// How many threads drive the load (see `RunArgs::threads`).
fn load_threads(asked: Option<u16>) -> usize {
    // One per core, also on 2 cores where the target shares them: measured on the sessions
    // case (bench/NOTES.md, round 8), two threads of their own runtime each serve 4-26 % more
    // requests/s than one, for the same CPU per request or up to 15 % more.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    asked.map_or(cores, usize::from)
}

/// The runtime `sesscheck run` runs on. Closed-loop users run on `threads` threads of one
/// runtime each (`load::run`), so this one is a single thread. The open-loop generator runs
/// here, on a runtime of `threads` workers.
fn load_runtime(threads: usize, open_loop: bool) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads == 1 || !open_loop {
        // One thread: no work stealing, no waking of another worker per request.
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder.enable_all().build()
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// The terminal summary.
    Table,
    /// Markdown for CI job summaries and PR comments.
    Md,
    /// JUnit XML for CI test reporters.
    Junit,
    /// One self-contained HTML page with charts.
    Html,
    /// The JSON report itself.
    Json,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::scenario::parse_duration(s)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Guard(args) => {
            return match crate::process::guard::run(args) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(Outcome::Unreachable as u8)
                }
            }
        }
        Command::Run(args) => run(args),
        Command::Validate { scenario } => validate(&scenario),
        Command::Report { report, format } => rerender(&report, format),
        Command::Compare { a, b } => compare(&a, &b),
        Command::Merge { reports, out } => merge(&reports, out.as_deref()),
        Command::Completions { shell } => shell::completions(shell, Cli::command()),
        Command::Man => shell::man_page(Cli::command()),
        Command::Init(args) => init(args),
        Command::Target(args) => match crate::demo::run(args) {
            Ok(()) => Outcome::Pass,
            Err(e) => {
                eprintln!("error: {e:#}");
                Outcome::Unreachable
            }
        },
    };
    ExitCode::from(outcome as u8)
}

fn load(path: &std::path::Path) -> Result<Scenario, Outcome> {
    Scenario::load(path).map_err(|e| {
        eprintln!("error: invalid scenario: {e}");
        Outcome::Invalid
    })
}

fn validate(path: &std::path::Path) -> Outcome {
    match load(path) {
        Ok(s) => {
            println!(
                "{}: ok (scenario {:?}, {})",
                path.display(),
                s.name,
                crate::run::users_and_tabs(s.load.users, s.load.tabs)
            );
            if let Some(d) = &s.description {
                println!("  {}", d.trim());
            }
            Outcome::Pass
        }
        Err(o) => o,
    }
}

fn run(args: RunArgs) -> Outcome {
    let scenario = match load(&args.scenario) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let shard = match args
        .shard
        .as_deref()
        .map(crate::load::schedule::parse_shard)
    {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    let overrides = Overrides {
        shard,
        url: args.url,
        users: args.users,
        duration: args.duration,
        report_dir: args.report_dir,
        quiet: args.quiet,
        verbose: args.verbose,
        events: args.events,
        threads: load_threads(args.threads),
    };
    let mut scenario = crate::run::apply(scenario, &overrides);
    // The overrides get the same checks as the file (`--users 0`, `--url ftp://...`).
    match scenario.validate() {
        Ok(lowered) => scenario.lowered = lowered,
        Err((field, message)) => {
            eprintln!("error: invalid command-line override: {field}: {message}");
            return Outcome::Invalid;
        }
    }
    let open_loop = scenario.load.rate.is_some();
    let runtime = match load_runtime(overrides.threads, open_loop) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Outcome::Unreachable;
        }
    };
    // An error can quote a restart command's output or a target's answer: redacted too.
    let redactor = crate::util::redact::Redactor::new(&scenario.secrets());
    match runtime.block_on(crate::run::run(scenario, overrides)) {
        Ok(outcome) => outcome,
        Err(e) => {
            let outcome = e
                .downcast_ref::<RunError>()
                .map(|r| r.outcome)
                .unwrap_or(Outcome::Unreachable);
            eprintln!("error: {}", redactor.redact(&format!("{e:#}")));
            outcome
        }
    }
}

/// `sesscheck init`: 0 written, 2 no login form (or a bad argument), 3 the app did not answer.
fn init(args: init::InitArgs) -> Outcome {
    let output = args.output.clone();
    let password_env = args.password_env.clone();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Outcome::Unreachable;
        }
    };
    match runtime.block_on(init::run(args)) {
        Ok(text) => match output {
            Some(path) => match std::fs::write(&path, &text) {
                Ok(()) => {
                    // The scenario reads the password from the environment: both need it.
                    eprintln!(
                        "sesscheck init: wrote {}; next, with {password_env} set: sesscheck validate {0} && sesscheck run {0}",
                        path.display()
                    );
                    Outcome::Pass
                }
                Err(e) => {
                    eprintln!("error: writing {}: {e}", path.display());
                    Outcome::Invalid
                }
            },
            None => {
                print!("{text}");
                Outcome::Pass
            }
        },
        Err(init::InitError::Usage(m)) => {
            eprintln!("error: {m}");
            Outcome::Invalid
        }
        Err(init::InitError::Unreachable(m)) => {
            eprintln!("error: {m}");
            Outcome::Unreachable
        }
    }
}

fn rerender(path: &std::path::Path, format: Format) -> Outcome {
    match crate::report::load(path) {
        Ok(r) => match render(&r, format) {
            Ok(text) => {
                print!("{text}");
                Outcome::Pass
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                Outcome::Invalid
            }
        },
        Err(e) => {
            eprintln!("error: {e:#}");
            Outcome::Invalid
        }
    }
}

fn render(r: &crate::report::Report, format: Format) -> anyhow::Result<String> {
    use crate::report::{html, junit, markdown, table};
    Ok(match format {
        Format::Table => table::render(r),
        Format::Md => markdown::render(r),
        Format::Junit => junit::render(r)?,
        Format::Html => html::render(r),
        Format::Json => serde_json::to_string_pretty(r)? + "\n",
    })
}

/// Exit 1 when B is worse than A (see `WORSE_RULE`), 2 when either is not a report.
fn compare(a: &std::path::Path, b: &std::path::Path) -> Outcome {
    let (ra, rb) = match (crate::report::load(a), crate::report::load(b)) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e:#}");
            return Outcome::Invalid;
        }
    };
    if ra.scenario != rb.scenario {
        eprintln!(
            "note: comparing different scenarios ({:?} and {:?})",
            ra.scenario, rb.scenario
        );
    }
    let c = crate::report::compare::compare(&ra, &rb);
    print!(
        "{}",
        crate::report::compare::render(&c, &a.display().to_string(), &b.display().to_string())
    );
    if c.worse {
        Outcome::Fail
    } else {
        Outcome::Pass
    }
}

fn merge(paths: &[PathBuf], out: Option<&std::path::Path>) -> Outcome {
    let mut reports = Vec::new();
    for p in paths {
        match crate::report::load(p) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("error: {e:#}");
                return Outcome::Invalid;
            }
        }
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let merged = match crate::report::merge::merge(&reports, &names) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Outcome::Invalid;
        }
    };
    let json = serde_json::to_string_pretty(&merged).unwrap_or_default();
    match out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &json) {
                eprintln!("error: writing {}: {e}", path.display());
                return Outcome::Invalid;
            }
            print!("{}", crate::report::table::render(&merged));
            println!("report: {}", path.display());
        }
        None => println!("{json}"),
    }
    if merged.verdict == "pass" {
        Outcome::Pass
    } else if merged.nothing_measured() {
        Outcome::NotMeasured
    } else {
        Outcome::Fail
    }
}
