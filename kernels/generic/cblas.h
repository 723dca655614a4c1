/* The two CBLAS calls the reference kernels make (kernels/ref/conv2d.c, dense.c), for builds
 * without OpenBLAS (MORSEL_WITH_BLAS=OFF). This directory is put on the include path instead
 * of OpenBLAS's, so the references compile unchanged; the names are mapped to our own
 * functions so a program that also links a real BLAS sees no clash. Only what the references
 * use: row-major, A not transposed (sgemm), A transposed (sgemv). */
#ifndef MORSEL_GENERIC_CBLAS_H
#define MORSEL_GENERIC_CBLAS_H

enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

#define cblas_sgemm mk_portable_sgemm
#define cblas_sgemv mk_portable_sgemv

/* C = alpha A B + beta C, A [M, K], B [K, N], C [M, N]; row-major, no transposes. */
void mk_portable_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                       int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc);
/* y = alpha op(A) x + beta y, A [M, N] row-major; op(A) = A^T when trans == CblasTrans. */
void mk_portable_sgemv(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans, int M, int N,
                       float alpha, const float *A, int lda, const float *x, int incx,
                       float beta, float *y, int incy);

#endif
