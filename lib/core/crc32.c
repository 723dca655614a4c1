/* CRC-32 (ISO-HDLC, reflected 0xEDB88320), the checksum of every section, identical to
 * zlib's crc32() so the Python exporter can use zlib.crc32. Every byte of the file is checked
 * once at load, so this is a large part of the load time of a big model. By speed: the
 * carry-less multiply folds (kernels/x86/u8_crc32_*.c, several times zlib's sliced loop), chosen
 * by CPU here since checksums run before the model's kernel set is chosen; then zlib (already
 * linked through libpng); then a byte-table loop for builds without zlib (the minimal build). */
#include "crc32.h"
#include "model.h"

#ifdef MORSEL_HAVE_ZLIB
#include <zlib.h>

static uint32_t crc32_portable(uint32_t crc, const uint8_t *p, size_t n)
{
    uLong c = crc;
    while (n > 0) { /* zlib takes uInt lengths */
        uInt step = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, step);
        p += step;
        n -= step;
    }
    return (uint32_t)c;
}
#else
static uint32_t crc32_portable(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = (crc >> 8) ^ table[(crc ^ p[i]) & 0xFFu];
    return ~crc;
}
#endif

uint32_t mf_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
#if defined(MK_HAVE_X86) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("pclmul")) {
        if (__builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("avx2"))
            return mk_u8_crc32_vpclmul(crc, p, n);
        return mk_u8_crc32_pclmul(crc, p, n);
    }
#endif
    return crc32_portable(crc, p, n);
}
