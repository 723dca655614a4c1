/* CRC-32 (ISO-HDLC, reflected 0xEDB88320), bit-identical to zlib's crc32() so the Python
 * exporter can use zlib.crc32. Table-free nibble loop: model files are checked once at load. */
#include "model.h"

uint32_t mf_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    static const uint32_t nib[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
        0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
        0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nib[crc & 15];
        crc = (crc >> 4) ^ nib[crc & 15];
    }
    return ~crc;
}
