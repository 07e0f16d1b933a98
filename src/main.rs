//! The `sesscheck` binary: everything lives in the library; see `src/lib.rs` for the map.

fn main() -> std::process::ExitCode {
    sesscheck::cli::main()
}
