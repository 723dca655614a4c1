/* OpenBLAS starts its own thread pool on first use, sized to the machine. Inside our pool (or
 * a server's W workers) that would run more threads than the caller asked for, so the
 * library pins it to one thread when a model is opened: the reference conv and dense kernels
 * are the only BLAS callers, and Morsel's threads split the work itself. Weak, so a build
 * against another BLAS (or none) links and simply skips this. */
#include "model.h"

void openblas_set_num_threads(int num_threads) __attribute__((weak));

void mf_blas_single_thread(void)
{
    if (openblas_set_num_threads)
        openblas_set_num_threads(1);
}
