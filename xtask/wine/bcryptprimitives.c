/*
 * Test set-up only, never shipped with oasis.exe: Wine 8 (Debian 12) has no
 * bcryptprimitives.dll, and Rust's std (1.78 and later) imports ProcessPrng
 * from it, so no Rust program starts under that Wine. Real Windows 10 and 11
 * have the DLL. This stand-in implements the one function over BCryptGenRandom,
 * which Wine does have; `cargo xtask windows` builds it into the test Wine
 * prefix's system32.
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* BCryptGenRandom takes a ULONG length; SIZE_T is 64-bit here. */
    while (len > 0) {
        ULONG chunk = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) < 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
