//! `oasis` for Unix: the shared process-host CLI with Unix drivers.
//!
//! Everything a process host does lives in `oasis-cli` and `oasis-host-std`; this file is
//! the entry point and the one Unix driver that beats the portable one: the
//! epoch ticker for CPU budgets is a timer signal rather than a thread, which
//! saves starting a thread on every `oasis run` (a few percent of a cold start).

mod epoch;

fn main() {
    oasis_host_std::set_epoch_source(epoch::start);
    let status = oasis_cli::main(std::env::args_os());
    std::process::exit(status);
}
