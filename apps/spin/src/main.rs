//! Test app: spins forever, so tests can check that the CPU budget per call
//! stops it.

fn main() {
    println!("spinning");
    let mut n = 0u64;
    loop {
        // `black_box` keeps the optimiser from proving the loop pointless.
        n = std::hint::black_box(n.wrapping_add(1));
    }
}
