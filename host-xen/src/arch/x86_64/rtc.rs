//! The CMOS real-time clock: the wall-clock time at boot where Xen's shared
//! info does not give it.
//!
//! PC platform hardware at fixed ports, read once at boot for the clock, like
//! the PIT ([`super::pit`]), hence here and not in `drivers/`; Linux keeps it
//! in arch/x86 too (rtc.c). A Xen PVH guest has none.

use x86_64::instructions::port::Port;

/// Seconds since the Unix epoch from the CMOS real-time clock (UTC assumed,
/// as QEMU and Xen provide it). `None` if the RTC reads as nonsense.
pub fn unix_seconds() -> Option<u64> {
    fn read(reg: u8) -> u8 {
        // SAFETY: CMOS index/data ports; bit 7 of the index keeps NMIs enabled as they were (0).
        unsafe {
            Port::<u8>::new(0x70).write(reg);
            Port::<u8>::new(0x71).read()
        }
    }
    // No RTC (a Xen PVH guest has none): unclaimed ports read as all ones.
    // Checked first because every port access there is a trap to Xen.
    if read(0x0a) == 0xff {
        return None;
    }
    let snapshot = || {
        // Wait out an update in progress (under 2 ms) so the fields belong to one second.
        let mut spins = 0;
        while read(0x0a) & 0x80 != 0 && spins < 10_000 {
            spins += 1;
        }
        [read(0x00), read(0x02), read(0x04), read(0x07), read(0x08), read(0x09), read(0x32)]
    };
    // Read until two snapshots agree: an update may still slip in between.
    let mut a = snapshot();
    for _ in 0..5 {
        let b = snapshot();
        if a == b {
            break;
        }
        a = b;
    }
    let status_b = read(0x0b);
    let bcd = status_b & 0x04 == 0;
    let conv = |v: u8| if bcd { (v & 0x0f) + (v >> 4) * 10 } else { v };
    let [s, m, h, d, mo, y, c] = a;
    let pm = h & 0x80 != 0;
    let mut hour = conv(h & 0x7f) as u64;
    if status_b & 0x02 == 0 {
        // 12-hour mode
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match conv(c) {
        19..=21 => conv(c) as u64,
        _ => 20,
    };
    let (sec, min, day, month, year) =
        (conv(s) as u64, conv(m) as u64, conv(d) as u64, conv(mo) as u64, century * 100 + conv(y) as u64);
    if sec > 59 || min > 59 || hour > 23 || !(1..=31).contains(&day) || !(1..=12).contains(&month) || year < 1970 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm, for years >= 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
