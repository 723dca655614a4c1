/* CRC-32 (ISO-HDLC, reflected 0xEDB88320), the checksum of every section, identical to
 * zlib's crc32() so the Python exporter can use zlib.crc32. zlib (already linked through
 * libpng) runs a sliced, SIMD-folded CRC: every byte of the file is checked once at load, so
 * this is most of the load time of a large model. The byte-table loop remains for builds
 * without zlib (the minimal build). */
#include "model.h"

#ifdef MORSEL_HAVE_ZLIB
#include <zlib.h>

uint32_t mf_crc32(uint32_t crc, const uint8_t *p, size_t n)
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
uint32_t mf_crc32(uint32_t crc, const uint8_t *p, size_t n)
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
