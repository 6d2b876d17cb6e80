//! Console control events: Ctrl-C, Ctrl-Break, closing the console window.
//!
//! On Unix, Ctrl-C is `SIGINT`, which ends `oasis` with no clean-up, and the
//! shell reports status 130 (128 + SIGINT). Windows instead calls a handler
//! on a new thread, and the default one exits with `STATUS_CONTROL_C_EXIT`
//! (0xC000013A), which scripts written for the Unix host do not expect. This
//! handler ends the process with 130 on every such event, so both hosts report
//! an interrupted run the same way. Nothing needs flushing first: the app's
//! output goes straight to the process's stdout/stderr (no host buffer).

use windows_sys::Win32::Foundation::{FALSE, TRUE};
use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, SetConsoleCtrlHandler};
use windows_sys::core::BOOL;

/// The status of a run ended by Ctrl-C, as a Unix shell reports it.
const EXIT_INTERRUPTED: u32 = 130;

unsafe extern "system" fn on_ctrl(event: u32) -> BOOL {
    match event {
        CTRL_C_EVENT | CTRL_BREAK_EVENT | CTRL_CLOSE_EVENT => {
            // `ExitProcess`, not `std::process::exit`: it runs no Rust
            // destructors, which other threads may be inside of right now.
            // SAFETY: ending the process is always sound.
            unsafe { windows_sys::Win32::System::Threading::ExitProcess(EXIT_INTERRUPTED) }
        }
        // Log-off and shutdown events are for services; let the default act.
        _ => FALSE,
    }
}

/// Installs the handler; without a console (a service, a pipe-only child) the
/// call fails harmlessly and the default behaviour stays.
pub fn install_ctrl_handler() {
    // SAFETY: `on_ctrl` has the `PHANDLER_ROUTINE` signature and lives forever.
    unsafe {
        SetConsoleCtrlHandler(Some(on_ctrl), TRUE);
    }
}
