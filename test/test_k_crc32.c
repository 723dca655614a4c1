/* CRC-32 kernels (kernels/x86/u8_crc32_{pclmul,vpclmul}.c, the library's pick mf_crc32) against
 * the bit-by-bit reference (kernels/ref/crc32.c), and the reference against zlib's crc32 and
 * the published check value of CRC-32/ISO-HDLC (0xCBF43926 for "123456789").
 *
 * What must hold: every variant returns exactly the reference's value for every length 0..1100
 * at 20 start offsets (the folds' 64/128-byte steps, the 16-byte tail loop and the
 * scalar last bytes all meet their edges there), for long odd lengths, for non-zero starting
 * CRCs, and when a buffer is checksummed in pieces (chaining). A flipped bit changes the value.
 *
 * `test_k_crc32 --bench` prints GB/s of each, in L2 and from memory, instead. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32.h"
#include "model.h"

#ifdef MORSEL_HAVE_ZLIB
#include <zlib.h>
#endif

typedef uint32_t (*crc_fn)(uint32_t crc, const uint8_t *p, size_t n);

typedef struct variant {
    const char *name;
    int ok; /* the CPU runs it */
    crc_fn f;
} variant;

static int passed, failed;

static void check(int ok, const char *what, const char *name, size_t n, size_t align)
{
    if (ok) {
        passed++;
        return;
    }
    if (failed++ < 20)
        printf("FAIL %s [%s] n=%zu align=%zu\n", what, name, n, align);
}

#ifdef MORSEL_HAVE_ZLIB
static uint32_t zlib_crc(uint32_t crc, const uint8_t *p, size_t n)
{
    return (uint32_t)crc32(crc, p, (uInt)n);
}
#endif

static uint8_t *random_bytes(size_t n, uint32_t seed)
{
    uint8_t *b = malloc(n);
    for (size_t i = 0; b && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (uint8_t)(seed >> 24);
    }
    return b;
}

static void test_reference(void)
{
    const uint8_t check_str[] = "123456789";
    check(mk_crc32_ref(0, check_str, 9) == 0xCBF43926u, "check value of CRC-32/ISO-HDLC", "ref",
          9, 0);
    check(mk_crc32_ref(0, check_str, 0) == 0, "empty message", "ref", 0, 0);
#ifdef MORSEL_HAVE_ZLIB
    uint8_t *b = random_bytes(5000, 7);
    for (size_t n = 0; n <= 5000; n += n < 300 ? 1 : 97)
        check(mk_crc32_ref(0x9E3779B9u, b, n) == zlib_crc(0x9E3779B9u, b, n), "equals zlib", "ref",
              n, 0);
    free(b);
#else
    printf("NOTE this build has no zlib: the reference is checked by its check value only\n");
#endif
}

static void test_variant(const variant *v, const uint8_t *buf)
{
    /* Every length up to 1100 at start offsets covering every residue mod 16 and others: both
     * folds' steps and tails. */
    static const size_t aligns[] = {0, 1, 2,  3,  4,  5,  6,  7,  8,  9,
                                    10, 11, 12, 13, 14, 15, 16, 31, 33, 63};
    for (size_t ai = 0; ai < sizeof aligns / sizeof aligns[0]; ai++)
        for (size_t n = 0, a = aligns[ai]; n <= 1100; n++) {
            uint32_t start = (uint32_t)(n * 2654435761u);
            check(v->f(start, buf + a, n) == mk_crc32_ref(start, buf + a, n),
                  "equals the reference", v->name, n, a);
        }
    /* Long odd lengths from odd addresses. */
    static const size_t long_n[] = {4095, 4096, 4097, 65535, 65536 + 77, 1000003};
    for (size_t i = 0; i < sizeof long_n / sizeof long_n[0]; i++)
        for (size_t a = 0; a < 3; a++)
            check(v->f(0, buf + a, long_n[i]) == mk_crc32_ref(0, buf + a, long_n[i]),
                  "long buffer equals the reference", v->name, long_n[i], a);
    /* In pieces: chaining gives the whole buffer's CRC. */
    size_t n = 300007, cut[] = {0, 1, 63, 64, 129, 4000, 150001, 299999, n};
    uint32_t whole = mk_crc32_ref(0, buf + 5, n);
    for (size_t i = 0; i + 1 < sizeof cut / sizeof cut[0]; i++) {
        uint32_t c = v->f(0, buf + 5, cut[i]);
        c = v->f(c, buf + 5 + cut[i], cut[i + 1] - cut[i]);
        c = v->f(c, buf + 5 + cut[i + 1], n - cut[i + 1]);
        check(c == whole, "chained pieces equal the whole", v->name, cut[i], cut[i + 1]);
    }
    /* Any flipped bit changes the value (a CRC-32 catches every single-bit error). */
    uint8_t *copy = malloc(4099);
    memcpy(copy, buf, 4099);
    uint32_t base = v->f(0, copy, 4099);
    for (size_t bit = 0; bit < 4099 * 8; bit += 61) {
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        check(v->f(0, copy, 4099) != base, "a flipped bit changes the CRC", v->name, 4099, bit);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    free(copy);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Interleaved rounds so that drift hits every variant alike: GB/s over `len` bytes, repeated to
 * 16 MiB (256 KiB stays in L2: the kernel's own speed; 16 MiB streams from memory, as a load
 * does). Median and best: on a shared machine the best is the closer to what the code can do. */
static void bench_one(const variant *vs, int nv, const uint8_t *buf, size_t len)
{
    enum { ROUNDS = 31 };
    double t[8][ROUNDS];
    size_t total = (size_t)16 << 20;
    volatile uint32_t sink = 0;
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < nv; i++) {
            if (!vs[i].ok)
                continue;
            size_t reps = total / len / (vs[i].f == mk_crc32_ref ? 64 : 1);
            reps = reps ? reps : 1;
            double t0 = now_s();
            for (size_t k = 0; k < reps; k++)
                sink ^= vs[i].f(0, buf, len);
            t[i][r] = (double)(len * reps) / (now_s() - t0) / 1e9;
        }
    printf("%-10s %8s %8s   (%zu KiB buffer, %d interleaved rounds, 1 thread)\n", "crc32",
           "median", "best", len >> 10, ROUNDS);
    for (int i = 0; i < nv; i++) {
        if (!vs[i].ok) {
            printf("%-10s %8s\n", vs[i].name, "CPU lacks it");
            continue;
        }
        qsort(t[i], ROUNDS, sizeof t[i][0], cmp_double);
        printf("%-10s %8.2f %8.2f GB/s\n", vs[i].name, t[i][ROUNDS / 2], t[i][ROUNDS - 1]);
    }
    (void)sink;
}

static void bench(const variant *vs, int nv, const uint8_t *buf, size_t n)
{
    bench_one(vs, nv, buf, (size_t)256 << 10);
    bench_one(vs, nv, buf, n);
}

int main(int argc, char **argv)
{
    variant vs[8];
    int nv = 0;
    vs[nv++] = (variant){"ref", 1, mk_crc32_ref};
#ifdef MORSEL_HAVE_ZLIB
    vs[nv++] = (variant){"zlib", 1, zlib_crc};
#endif
#if defined(MK_HAVE_X86) && defined(__GNUC__)
    __builtin_cpu_init();
    int pclmul = __builtin_cpu_supports("pclmul");
    vs[nv++] = (variant){"pclmul", pclmul, mk_u8_crc32_pclmul};
    vs[nv++] = (variant){"vpclmul", pclmul && __builtin_cpu_supports("vpclmulqdq") &&
                                         __builtin_cpu_supports("avx2"),
                         mk_u8_crc32_vpclmul};
#else
    printf("NOTE this build has no x86 CRC kernels: the library's pick is the portable one\n");
#endif
    vs[nv++] = (variant){"mf_crc32", 1, mf_crc32};
    size_t n = (size_t)16 << 20;
    uint8_t *buf = random_bytes(n + 64, 12345);
    if (!buf) {
        printf("FAIL out of memory\n");
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench(vs, nv, buf, n);
        free(buf);
        return 0;
    }
    test_reference();
    for (int i = 1; i < nv; i++) {
        if (!vs[i].ok) {
            printf("SKIPPED %s: CPU lacks it\n", vs[i].name);
            continue;
        }
        int f0 = failed;
        test_variant(&vs[i], buf);
        printf("%s %s\n", failed == f0 ? "ok  " : "FAIL", vs[i].name);
    }
    free(buf);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
