//! The smallest Oasis app: a plain WASI command that uses only Rust's std.
//!
//! It has no `#[oasis::main]`, so it is a *command app* (ABI.md section 1):
//! the host runs `_start` and the app is done when `main` returns.

fn main() {
    println!("Hello from Oasis!");
    // Skip the program name: it differs between hosts (the package name under
    // Oasis, the file name under other runtimes) and would make output vary.
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("args: {args:?}");
    match std::env::var("GREETING") {
        Ok(greeting) => println!("GREETING={greeting}"),
        Err(_) => println!("GREETING is not set (pass -e GREETING=...)"),
    }
}
