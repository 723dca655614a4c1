/* The bulk of the folding CRC-32 (arithmetic and constants: u8_crc32_pclmul.c), written once for
 * a vector of CRC_VBYTES bytes; included by u8_crc32_pclmul.c (128-bit) and u8_crc32_vpclmul.c
 * (256-bit), which define before it
 *   crc_v                 the vector type
 *   crc_load(p)           an unaligned load
 *   crc_start(r)          a vector holding the 32-bit register r in its lowest bytes, zeros above
 *   crc_xor(a, b)
 *   crc_fold(x, k, next)  x moved forward by the distance k encodes, XOR next (in every lane)
 * Four registers each take every fourth vector of the message. */
#ifndef MORSEL_CRC32_FOLD_BODY_H
#define MORSEL_CRC32_FOLD_BODY_H

/* Folds p[0, 4 * CRC_VBYTES * steps) with steps >= 1 into one register: k_jump moves a register
 * over the four (4 * CRC_VBYTES bytes), k_next over one (CRC_VBYTES bytes). The start register
 * ~crc enters as an XOR into the first 4 bytes. */
static crc_v crc_fold_bulk(uint32_t crc, const uint8_t *p, size_t steps, crc_v k_jump,
                           crc_v k_next)
{
    const size_t v = CRC_VBYTES;
    crc_v x0 = crc_xor(crc_load(p), crc_start(~crc)), x1 = crc_load(p + v);
    crc_v x2 = crc_load(p + 2 * v), x3 = crc_load(p + 3 * v);
    for (size_t s = 1; s < steps; s++) {
        p += 4 * v;
        x0 = crc_fold(x0, k_jump, crc_load(p));
        x1 = crc_fold(x1, k_jump, crc_load(p + v));
        x2 = crc_fold(x2, k_jump, crc_load(p + 2 * v));
        x3 = crc_fold(x3, k_jump, crc_load(p + 3 * v));
    }
    return crc_fold(crc_fold(crc_fold(x0, k_next, x1), k_next, x2), k_next, x3);
}

#endif
