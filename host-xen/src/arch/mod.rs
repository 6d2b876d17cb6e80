//! Architecture code. The kernel boots as an x86_64 PVH guest only, so
//! there is one architecture; the rest of the kernel names it explicitly
//! (`crate::arch::x86_64::…`) rather than through a portability layer that
//! nothing would use yet.

pub mod x86_64;
