//! Test app: traps inside a function with a recognisable name, so tests can
//! check that the host reports the trap with a symbolised backtrace.

fn main() {
    println!("about to trap");
    deliberately_crash();
}

/// Executes `unreachable`. Never inlined, so it keeps its own frame (and its
/// name in the backtrace) even under LTO.
#[inline(never)]
fn deliberately_crash() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}
