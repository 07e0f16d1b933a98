//! `sesscheck completions SHELL` and `sesscheck man`: both generated from the clap definition
//! in `cli` (passed in as `cmd`), so they always list the flags the binary really has.

use crate::run::Outcome;
use std::io::Write;

/// The completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell, mut cmd: clap::Command) -> Outcome {
    clap_complete::generate(shell, &mut cmd, "sesscheck", &mut std::io::stdout());
    Outcome::Pass
}

/// The man page (roff, section 1) on stdout.
pub fn man_page(cmd: clap::Command) -> Outcome {
    let mut roff = Vec::new();
    let rendered = clap_mangen::Man::new(cmd).render(&mut roff);
    let written = rendered.and_then(|()| std::io::stdout().write_all(&roff));
    match written {
        Ok(()) => Outcome::Pass,
        Err(e) => {
            eprintln!("error: writing the man page: {e}");
            Outcome::Invalid
        }
    }
}
