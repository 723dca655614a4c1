/* The x86 kernel tables. Compiled without ISA flags: it only takes addresses; the kernels it
 * names are built in kernels/x86/ with their own flags and run only after the CPU check in
 * isa.c. A family whose variant is not written yet stays NULL (scalar reference). */
#include "isa.h"

void mf_isa_fill_x86(mf_isa isa, mf_isa_kernels *k);

void mf_isa_fill_x86(mf_isa isa, mf_isa_kernels *k)
{
    if (isa == MF_ISA_AVX512) {
        (void)k;
    } else if (isa == MF_ISA_AVX2) {
        (void)k;
    }
}
