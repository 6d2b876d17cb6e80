//! Checked access to a guest's linear memory.
//!
//! Guest pointers and lengths are untrusted `i32`s: reinterpret them as `u32`
//! (wasm32 addresses are unsigned), add with overflow checks, and compare with
//! the memory's current size. Nothing here can panic on guest input.

use core::ops::Range;

/// A pointer/length pair outside linear memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault;

/// The byte range `ptr..ptr+len`, if it lies inside `mem`.
pub fn range(mem: &[u8], ptr: i32, len: u32) -> Result<Range<usize>, Fault> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as usize).ok_or(Fault)?;
    if end > mem.len() {
        return Err(Fault);
    }
    Ok(start..end)
}

/// Borrows `len` guest bytes at `ptr`.
pub fn bytes(mem: &[u8], ptr: i32, len: i32) -> Result<&[u8], Fault> {
    Ok(&mem[range(mem, ptr, len as u32)?])
}

/// Borrows `len` guest bytes at `ptr` for writing.
pub fn bytes_mut(mem: &mut [u8], ptr: i32, len: i32) -> Result<&mut [u8], Fault> {
    let r = range(mem, ptr, len as u32)?;
    Ok(&mut mem[r])
}

/// Writes `value` at `ptr`.
pub fn write_bytes(mem: &mut [u8], ptr: i32, value: &[u8]) -> Result<(), Fault> {
    let r = range(mem, ptr, value.len() as u32)?;
    mem[r].copy_from_slice(value);
    Ok(())
}

/// Writes a little-endian `u32` at `ptr`.
pub fn write_u32(mem: &mut [u8], ptr: i32, value: u32) -> Result<(), Fault> {
    write_bytes(mem, ptr, &value.to_le_bytes())
}

/// Writes a little-endian `u64` at `ptr`.
pub fn write_u64(mem: &mut [u8], ptr: i32, value: u64) -> Result<(), Fault> {
    write_bytes(mem, ptr, &value.to_le_bytes())
}

/// Reads a little-endian `u32` at `ptr`.
pub fn read_u32(mem: &[u8], ptr: i32) -> Result<u32, Fault> {
    Ok(u32::from_le_bytes(bytes(mem, ptr, 4)?.try_into().map_err(|_| Fault)?))
}

/// Reads a little-endian `u64` at `ptr`.
pub fn read_u64(mem: &[u8], ptr: i32) -> Result<u64, Fault> {
    Ok(u64::from_le_bytes(bytes(mem, ptr, 8)?.try_into().map_err(|_| Fault)?))
}

/// Checks that `len` bytes at `ptr` can be written, before doing anything
/// irreversible whose result would go there.
pub fn check(mem: &[u8], ptr: i32, len: u32) -> Result<(), Fault> {
    range(mem, ptr, len).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let mut mem = [0u8; 16];
        assert!(bytes(&mem, 0, 16).is_ok());
        assert_eq!(bytes(&mem, 1, 16), Err(Fault));
        assert_eq!(bytes(&mem, -1, 1), Err(Fault), "-1 is address 4294967295");
        assert_eq!(bytes(&mem, 8, -1), Err(Fault), "-1 is length 4294967295");
        assert!(bytes(&mem, 16, 0).is_ok(), "an empty slice at the end is fine");
        assert_eq!(write_u64(&mut mem, 9, 1), Err(Fault));
        write_u32(&mut mem, 12, 0xdead_beef).unwrap();
        assert_eq!(read_u32(&mem, 12), Ok(0xdead_beef));
    }
}
