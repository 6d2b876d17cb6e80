//! `oasis` for Unix: the shared process-host CLI with Unix drivers.
//!
//! Everything a process host does lives in `host_core::process`; this file is the
//! entry point and the one thing that differs between Unix and Windows here:
//! how the process reports its exit status.

fn main() {
    let status = host_core::process::cli::main(std::env::args_os());
    std::process::exit(status);
}
