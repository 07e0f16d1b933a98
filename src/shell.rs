//! `sesscheck completions SHELL` and `sesscheck man`: both generated from the clap definition
//! in `cli`, so they always list the flags the binary really has.

use crate::cli::Cli;
use crate::run::Outcome;
use clap::CommandFactory;
use std::io::Write;

/// The completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "sesscheck", &mut std::io::stdout());
    Outcome::Pass
}

/// The man page (roff, section 1) on stdout.
pub fn man_page() -> Outcome {
    let mut roff = Vec::new();
    let rendered = clap_mangen::Man::new(Cli::command()).render(&mut roff);
    let written = rendered.and_then(|()| std::io::stdout().write_all(&roff));
    match written {
        Ok(()) => Outcome::Pass,
        Err(e) => {
            eprintln!("error: writing the man page: {e}");
            Outcome::Invalid
        }
    }
}
