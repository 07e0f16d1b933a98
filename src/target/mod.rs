//! The built-in demo target (stub; see issue 2 / DESIGN.md).
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Number of worker processes.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
}

pub fn run(_args: TargetArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
