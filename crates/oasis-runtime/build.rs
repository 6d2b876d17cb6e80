//! Records the target triple this crate is built for, so the runtime can pick the
//! AOT code compiled for its own platform (`config::EngineProfile::native`).
fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=OASIS_HOST_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
