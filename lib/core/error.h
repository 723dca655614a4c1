/* Status + message reporting shared by every part of the library. */
#ifndef MORSEL_ERROR_H
#define MORSEL_ERROR_H

#include "morsel.h"

/* Fills err (when non-NULL) and returns s, so callers can `return morsel_fail(...)`. */
morsel_status morsel_fail(morsel_error *err, morsel_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to err's message (e.g. the file name) and returns s. */
morsel_status morsel_prefix(morsel_error *err, morsel_status s, const char *prefix);

#endif
