#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

morsel_status morsel_fail(morsel_error *err, morsel_status s, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->status = s;
    }
    return s;
}

morsel_status morsel_prefix(morsel_error *err, morsel_status s, const char *prefix)
{
    if (err && s) {
        char msg[sizeof err->message];
        memcpy(msg, err->message, sizeof msg);
        morsel_fail(err, s, "%s: %s", prefix, msg);
    }
    return s;
}

const char *morsel_status_name(morsel_status s)
{
    switch (s) {
    case MORSEL_OK: return "ok";
    case MORSEL_ERR_ARGUMENT: return "invalid argument";
    case MORSEL_ERR_IO: return "i/o error";
    case MORSEL_ERR_FORMAT: return "corrupt model file";
    case MORSEL_ERR_VERSION: return "unsupported model file version";
    case MORSEL_ERR_UNSUPPORTED: return "unsupported";
    case MORSEL_ERR_IMAGE: return "bad image";
    case MORSEL_ERR_LIMIT: return "limit exceeded";
    case MORSEL_ERR_NOMEM: return "out of memory";
    case MORSEL_ERR_SELFTEST: return "self-test failed";
    }
    return "unknown status";
}
