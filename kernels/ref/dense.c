/* Dense: y[rows, cout] = x[rows, cin] @ w[cin, cout] + b, then the activation.
 * Keras stores the kernel [Cin, Cout] row-major, which is the B operand of a row-major sgemm
 * as is. A classifier head is one row; sgemv skips sgemm's packing for that case. */
#include <cblas.h>
#include <string.h>

#include "kernels.h"

void mk_dense_ref(int rows, int cin, int cout, const float *x, const float *w, const float *b,
                  const mk_activation *act, float *y)
{
    size_t n = (size_t)rows * (size_t)cout;
    /* Seed y with the bias and let BLAS accumulate onto it (beta = 1). */
    float beta = 0.0f;
    if (b) {
        for (int r = 0; r < rows; r++)
            memcpy(y + (size_t)r * (size_t)cout, b, (size_t)cout * sizeof *y);
        beta = 1.0f;
    }
    if (rows == 1)
        /* y = w^T x: w is [cin, cout] row-major, so the transposed product walks its rows. */
        cblas_sgemv(CblasRowMajor, CblasTrans, cin, cout, 1.0f, w, cout, x, 1, beta, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cout, cin, 1.0f, x, cin, w,
                    cout, beta, y, cout);
    mk_activation_ref(act, y, n, (size_t)cout);
}
