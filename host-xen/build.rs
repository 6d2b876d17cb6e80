//! Links the kernel with its own script: PVH loads it at a fixed physical address.

fn main() {
    // A path relative to the package, not an absolute one: cargo runs rustc (and
    // so the linker) in the workspace root, which is this directory. An absolute
    // path would be baked into the build script's cached output, and the cache
    // (CARGO_TARGET_DIR) is shared by checkouts in other places, whose builds
    // then look for the script in a directory that may no longer exist.
    println!("cargo:rustc-link-arg-bins=-Tlink.ld");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
