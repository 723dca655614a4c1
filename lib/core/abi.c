#include "abi.h"

#include <string.h>

#include "error.h"

morsel_status mf_struct_check(size_t struct_size, size_t min, const char *name,
                              morsel_error *err)
{
    if (struct_size < min)
        return morsel_fail(err, MORSEL_ERR_ARGUMENT,
                           "%s.struct_size is %zu; set it to sizeof(%s) (at least %zu)", name,
                           struct_size, name, min);
    return MORSEL_OK;
}

void mf_struct_copy(void *dst, const void *src, size_t full)
{
    size_t n;
    memcpy(&n, dst, sizeof n);
    memcpy(dst, src, n < full ? n : full);
}
