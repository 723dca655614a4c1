/* EXIF and XMP orientation, read the way Pillow's getexif() reads them, and where
 * ImageOps.exif_transpose puts each decoded row. Pure byte parsing: no decoder involved. */
#include "image.h"

#include <string.h>

static uint32_t rd16(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t rd32(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Bytes per value of the TIFF field types Pillow's IFD reader knows (0: unknown, skipped). */
static unsigned tiff_unit(uint32_t type)
{
    switch (type) {
    case 1: case 2: case 6: case 7: return 1;       /* BYTE ASCII SBYTE UNDEFINED */
    case 3: case 8: return 2;                       /* SHORT SSHORT */
    case 4: case 9: case 11: case 13: return 4;     /* LONG SLONG FLOAT IFD */
    case 5: case 10: case 12: case 16: return 8;    /* RATIONAL SRATIONAL DOUBLE LONG8 */
    default: return 0;
    }
}

/* The first value of a field as a key of exif_transpose's {2..8} table, or -1 when it cannot be
 * one. Pillow gives BYTE, UNDEFINED and ASCII values as bytes/str (never a key); the integer types
 * as int; RATIONAL/SRATIONAL as a fraction and FLOAT/DOUBLE as a float, which equal the integer
 * key when integral (IFDRational(12, 2) == 6 == 6.0); a zero denominator is NaN. */
static long long tiff_first_value(uint32_t type, const uint8_t *p, int big)
{
    switch (type) {
    case 6: return (int8_t)p[0];
    case 3: return rd16(p, big);
    case 8: return (int16_t)rd16(p, big);
    case 4: case 13: return rd32(p, big);
    case 9: return (int32_t)rd32(p, big);
    case 16: {
        uint64_t hi = rd32(p + (big ? 0 : 4), big), lo = rd32(p + (big ? 4 : 0), big);
        return (hi << 32 | lo) > 8 ? -1 : (long long)lo;
    }
    case 5: case 10: {
        long long num = type == 5 ? (long long)rd32(p, big) : (long long)(int32_t)rd32(p, big);
        long long den = type == 5 ? (long long)rd32(p + 4, big)
                                  : (long long)(int32_t)rd32(p + 4, big);
        return den == 0 || num % den ? -1 : num / den;
    }
    case 11: {
        uint32_t bits = rd32(p, big);
        float f;
        memcpy(&f, &bits, sizeof f);
        return f >= 1.0f && f <= 8.0f && f == (float)(int)f ? (long long)f : -1;
    }
    case 12: {
        uint64_t bits = (uint64_t)rd32(p + (big ? 0 : 4), big) << 32 | rd32(p + (big ? 4 : 0), big);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d >= 1.0 && d <= 8.0 && d == (double)(int)d ? (long long)d : -1;
    }
    default: return -1; /* BYTE, ASCII, UNDEFINED */
    }
}

/* Pillow's Exif.load + ImageFileDirectory_v2.load, reduced to IFD0's Orientation (0x0112):
 * up to two leading "Exif\0\0" are dropped; an empty rest has no tags; the TIFF header must be
 * 8 bytes starting with II*\0, MM\0*, MM*\0, II\0* or MM\0+ (otherwise, II+\0 BigTIFF
 * included, Pillow raises and reads no orientation at all, not even from XMP: -1); the IFD is read
 * entry by entry until it or the data ends (Pillow keeps the entries read before a truncation);
 * the first entry of a tag wins; unknown types and zero-length values are skipped; a value stored
 * out of line is skipped when the out-of-line bytes of the tags read so far exceed the data's
 * size, and ends the IFD when it does not lie wholly inside the data. Every read is
 * bounds-checked. */
int mi_exif_orientation(const uint8_t *data, size_t size)
{
    static const uint8_t hdr[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (!data)
        return 0;
    for (int i = 0; i < 2 && size >= 6 && !memcmp(data, hdr, 6); i++) {
        data += 6;
        size -= 6;
    }
    if (size == 0)
        return 0;
    if (size < 8)
        return -1;
    int big;
    /* Pillow's accepted prefixes; it tells BigTIFF by byte 2 == 43 only, so "MM\0+" is read as
     * a classic big-endian TIFF while "II+\0" fails (its 8-byte offset is not in the header). */
    if (data[0] == 'M' && data[1] == 'M' && ((data[2] == 0 && data[3] == 42) ||
                                             (data[2] == 42 && data[3] == 0) ||
                                             (data[2] == 0 && data[3] == 43)))
        big = 1;
    else if (data[0] == 'I' && data[1] == 'I' && ((data[2] == 42 && data[3] == 0) ||
                                                  (data[2] == 0 && data[3] == 42)))
        big = 0;
    else
        return -1;
    uint64_t pos = rd32(data + 4, big);
    if (pos > size || size - pos < 2)
        return 0;
    uint32_t count = rd16(data + pos, big);
    pos += 2;
    uint64_t out_of_line = 0;
    int orientation = 0;
    uint8_t seen[65536 / 8];
    memset(seen, 0, sizeof seen);
    for (uint32_t i = 0; i < count && size - pos >= 12; i++, pos += 12) {
        const uint8_t *e = data + pos;
        uint32_t tag = rd16(e, big), type = rd16(e + 2, big), n = rd32(e + 4, big);
        if (seen[tag >> 3] & (1u << (tag & 7)))
            continue;
        unsigned unit = tiff_unit(type);
        if (!unit)
            continue;
        uint64_t bytes = (uint64_t)n * unit;
        const uint8_t *val = e + 8;
        if (bytes > 4) {
            uint64_t off = rd32(e + 8, big);
            out_of_line += bytes;
            if (out_of_line > size)
                continue;
            if (off > size || size - off < bytes)
                break; /* Pillow: "Truncated File Read" ends the IFD */
            val = data + off;
        }
        if (bytes == 0)
            continue;
        seen[tag >> 3] |= (uint8_t)(1u << (tag & 7));
        if (tag == 0x0112) {
            long long v = tiff_first_value(type, val, big);
            orientation = v >= 1 && v <= 8 ? (int)v : 1; /* present; nothing to undo */
        }
    }
    return orientation;
}

/* Pillow's XMP fallback (getexif() when EXIF has no Orientation): the first match of
 * tiff:Orientation(="|>)([0-9]) in the last XMP APP1 segment. 0 when there is none. */
int mi_xmp_orientation(const uint8_t *p, size_t n)
{
    static const char key[] = "tiff:Orientation";
    const size_t k = sizeof key - 1;
    for (size_t i = 0; n >= k + 2 && i <= n - k - 2; i++) {
        if (p[i] != 't' || memcmp(p + i, key, k))
            continue;
        const uint8_t *q = p + i + k;
        size_t left = n - i - k;
        if (q[0] == '=' && left >= 3 && q[1] == '"' && q[2] >= '0' && q[2] <= '9')
            return q[2] > '8' || q[2] == '0' ? 1 : q[2] - '0';
        if (q[0] == '>' && q[1] >= '0' && q[1] <= '9')
            return q[1] > '8' || q[1] == '0' ? 1 : q[1] - '0';
    }
    return 0;
}

/* The layouts of ImageOps.exif_transpose's Image.transpose methods, one per orientation. */
void mi_oriented_row(int orientation, size_t w, size_t h, size_t y, ptrdiff_t *start,
                     ptrdiff_t *step)
{
    const ptrdiff_t W = (ptrdiff_t)w, H = (ptrdiff_t)h, Y = (ptrdiff_t)y;
    switch (orientation) {
    case 2: *start = Y * W + W - 1; *step = -1; break;               /* FLIP_LEFT_RIGHT */
    case 3: *start = (H - 1 - Y) * W + W - 1; *step = -1; break;     /* ROTATE_180 */
    case 4: *start = (H - 1 - Y) * W; *step = 1; break;              /* FLIP_TOP_BOTTOM */
    case 5: *start = Y; *step = H; break;                            /* TRANSPOSE */
    case 6: *start = H - 1 - Y; *step = H; break;                    /* ROTATE_270 */
    case 7: *start = (W - 1) * H + H - 1 - Y; *step = -H; break;     /* TRANSVERSE */
    case 8: *start = (W - 1) * H + Y; *step = -H; break;             /* ROTATE_90 */
    default: *start = Y * W; *step = 1; break;
    }
}

