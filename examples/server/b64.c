/* Base64 (RFC 4648), strict: TF-Serving clients send the standard alphabet, some send the
 * URL-safe one; padding may be omitted. Anything else (stray characters, a lone final
 * character, data after padding) is an error, never a guess. */
#include "server.h"

static int value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long b64_decode(const char *in, size_t n, uint8_t *out)
{
    size_t pad = 0;
    if (n % 4 == 0 && n >= 4) {
        pad = (in[n - 1] == '=') + (in[n - 1] == '=' && in[n - 2] == '=');
        n -= pad;
    }
    if (n % 4 == 1)
        return -1;
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* The unused low bits of the last character must be zero (canonical encoding). */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return o;
}
