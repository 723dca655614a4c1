/* Size-prefixed public structs (include/morsel.h, "ABI"): the library reads and writes only the
 * part of a caller's struct its struct_size covers. The *_V1 sizes are the structs as this
 * release defines them; a caller built against an older header may never pass less. */
#ifndef MORSEL_ABI_H
#define MORSEL_ABI_H

#include <stddef.h>

#include "morsel.h"

#define MF_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#define MF_INFO_V1 MF_END(morsel_model_info, work)
#define MF_OP_INFO_V1 MF_END(morsel_op_info, work)
#define MF_PREPROCESS_V1 MF_END(morsel_preprocess, offset)
#define MF_DECODE_V1 MF_END(morsel_decode_options, jpeg_fast_scale)
/* + max_decode_work, max_decode_memory: read only when the caller's struct_size covers them */
#define MF_DECODE_V2 MF_END(morsel_decode_options, max_decode_memory)
#define MF_TIMINGS_V1 MF_END(morsel_timings, total_ms)

/* MORSEL_ERR_ARGUMENT, naming the struct, when struct_size < min. */
morsel_status mf_struct_check(size_t struct_size, size_t min, const char *name,
                              morsel_error *err);

/* Copies the first min(dst->struct_size, full) bytes of src (whose struct_size the caller has
 * set to dst's) into dst. Both begin with a size_t struct_size. */
void mf_struct_copy(void *dst, const void *src, size_t full);

#endif
