/* Weight packing for the register-blocked GEMM microkernels. Done once at model load. */
#include <string.h>

#include "gemm_pack.h"

size_t mk_gemm_panels_floats(int K, int N, int nr)
{
    size_t panels = ((size_t)N + (size_t)nr - 1) / (size_t)nr;
    return panels * (size_t)K * (size_t)nr;
}

void mk_gemm_pack_panels(int K, int N, int nr, const float *w, float *packed)
{
    for (int n0 = 0; n0 < N; n0 += nr) {
        int nc = N - n0 < nr ? N - n0 : nr;
        for (int k = 0; k < K; k++) {
            memcpy(packed, w + (size_t)k * (size_t)N + (size_t)n0, (size_t)nc * sizeof *packed);
            /* Zero columns make the padded lanes compute harmless zeros, never garbage. */
            memset(packed + nc, 0, (size_t)(nr - nc) * sizeof *packed);
            packed += nr;
        }
    }
}
