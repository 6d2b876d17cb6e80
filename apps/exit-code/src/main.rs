//! Test app: exits with the status given as its first argument (default 7),
//! so tests can check that `proc_exit(n)` becomes the process's status.

fn main() {
    let status = match std::env::args().nth(1) {
        None => 7,
        Some(arg) => match arg.parse() {
            Ok(status) => status,
            Err(_) => {
                eprintln!("exit-code: {arg:?} is not a number");
                std::process::exit(2);
            }
        },
    };
    println!("exiting with status {status}");
    std::process::exit(status);
}
