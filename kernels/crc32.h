/* CRC-32 as zlib's crc32() computes it (ISO-HDLC: reflected polynomial 0xEDB88320, register
 * started at ~crc and inverted at the end), the checksum of every .morsel section
 * (weights/FORMAT.md). All variants are chainable: f(f(0, a), b) is the CRC of a then b. The
 * library picks one by CPU (lib/core/crc32.c); the x86 ones are built with their own flags. */
#ifndef MORSEL_CRC32_H
#define MORSEL_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* One bit at a time: the definition, the oracle, and the kernels' last few bytes. */
uint32_t mk_crc32_ref(uint32_t crc, const uint8_t *p, size_t n);
/* Carry-less multiply folding, 64 bytes a step in four 128-bit lanes (PCLMULQDQ, SSE4.1). */
uint32_t mk_u8_crc32_pclmul(uint32_t crc, const uint8_t *p, size_t n);
/* The same, 128 bytes a step in four 256-bit lanes (VPCLMULQDQ, AVX2); needs PCLMULQDQ too. */
uint32_t mk_u8_crc32_vpclmul(uint32_t crc, const uint8_t *p, size_t n);

#endif
