/* Opening files the caller names (model files, images) without ever blocking on one. */
#ifndef MORSEL_FILE_IO_H
#define MORSEL_FILE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "morsel.h"

/* Thread-safe strerror: the text for errno value e, in buf. */
const char *mf_strerror(int e, char *buf, size_t n);

/* Opens path read-only and non-blocking (a FIFO with no writer must not hang us), then refuses
 * anything fstat does not call a regular file. `what` names it in messages ("model", "image").
 * On success *fd is open and blocking reads are back on. */
morsel_status mf_open_regular(const char *path, const char *what, int *fd, morsel_error *err);

/* Reads all of regular file `path` into *buf (grown with realloc, *cap its size) when it is at
 * most `limit` bytes: MORSEL_ERR_LIMIT above it. *n receives the byte count. */
morsel_status mf_read_file(const char *path, const char *what, uint64_t limit, uint8_t **buf,
                           size_t *cap, size_t *n, morsel_error *err);

#endif
