/* A small blocked GEMM for builds without BLAS (kernels/generic/cblas.h). Plain C the compiler
 * vectorises: the inner loop runs along a row of B and C (contiguous), so each k adds
 * a[i,k] * B[k, j0:j1] into a C row segment that stays in L1. Blocks of K x N keep the B block
 * in L2 while every row of A passes over it. Only the cases the reference kernels call are
 * handled (row-major, A and B not transposed; sgemv with A transposed); the loader validated
 * the shapes, so a wrong call is a programming error and aborts. */
#include <stdlib.h>

#include "cblas.h"

#define KB 256
#define NB 512

void mk_portable_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                       int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc)
{
    if (order != CblasRowMajor || ta != CblasNoTrans || tb != CblasNoTrans)
        abort();
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * (size_t)ldc;
        for (int j = 0; j < N; j++)
            c[j] = beta == 0.0f ? 0.0f : beta * c[j];
    }
    for (int j0 = 0; j0 < N; j0 += NB) {
        int j1 = N - j0 < NB ? N : j0 + NB;
        for (int k0 = 0; k0 < K; k0 += KB) {
            int k1 = K - k0 < KB ? K : k0 + KB;
            for (int i = 0; i < M; i++) {
                const float *a = A + (size_t)i * (size_t)lda;
                float *restrict c = C + (size_t)i * (size_t)ldc;
                for (int k = k0; k < k1; k++) {
                    float s = alpha * a[k];
                    const float *restrict b = B + (size_t)k * (size_t)ldb;
                    for (int j = j0; j < j1; j++)
                        c[j] += s * b[j];
                }
            }
        }
    }
}

void mk_portable_sgemv(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans, int M, int N,
                       float alpha, const float *A, int lda, const float *x, int incx,
                       float beta, float *y, int incy)
{
    if (order != CblasRowMajor || trans != CblasTrans || incx != 1 || incy != 1)
        abort();
    /* y [N] = alpha A^T x + beta y: row k of A scaled by x[k], accumulated along y. */
    for (int j = 0; j < N; j++)
        y[j] = beta == 0.0f ? 0.0f : beta * y[j];
    for (int k = 0; k < M; k++) {
        float s = alpha * x[k];
        const float *restrict a = A + (size_t)k * (size_t)lda;
        for (int j = 0; j < N; j++)
            y[j] += s * a[j];
    }
}
