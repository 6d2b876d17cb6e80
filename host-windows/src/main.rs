//! `oasis.exe`: the shared process-host CLI with Windows drivers.
//!
//! Everything a process host does lives once in `oasis-cli` and `oasis-host-std` (CLI,
//! std drivers, mio sockets — IOCP/AFD on Windows — and the epoch ticker
//! thread); host-unix and host-windows are its two entry points. What is
//! Windows-specific is console control events, in [`console`].

#[cfg(windows)]
mod console;

#[cfg(windows)]
fn main() {
    console::install_ctrl_handler();
    let status = oasis_cli::main(std::env::args_os());
    oasis_host_std::stop_thread_tickers();
    std::process::exit(status);
}

/// Built for another OS by mistake: it is not a member of the root workspace,
/// so only a deliberate `--manifest-path` gets here.
#[cfg(not(windows))]
fn main() {
    eprintln!("oasis: error: this is the Windows host; on this OS build and run host-unix's `oasis`");
    std::process::exit(oasis_runtime::EXIT_BAD_INPUT);
}
