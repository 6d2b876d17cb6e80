//! Test app: allocates 1 MiB at a time and never frees, so tests can check
//! that the memory limit stops it with a clear message.

const MIB: usize = 1 << 20;

fn main() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = Vec::<u8>::with_capacity(MIB);
        // Touch every page so the memory is really used, not just reserved.
        chunk.resize(MIB, 1);
        hoard.push(std::hint::black_box(chunk));
        if hoard.len().is_multiple_of(16) {
            println!("allocated {} MiB", hoard.len());
        }
    }
}
