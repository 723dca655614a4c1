/* LD_PRELOAD shim for the examples' memory tests: counts every heap allocation the process makes
 * (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc) and the largest
 * single request, and keeps the counts in a file another process reads while this one runs:
 *
 *   MORSEL_ALLOC_STATS=/tmp/stats LD_PRELOAD=libmorsel_alloc_shim.so PROGRAM ...
 *   the file holds three little-endian u64: calls, bytes requested, largest request.
 *
 * Interposing through the dynamic linker catches the C library's own allocations too (stdio
 * buffers), not only Morsel's. The real allocator is glibc's __libc_* entry points, which do
 * not recurse into these wrappers. Counting needs no lock: atomic adds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);

typedef struct alloc_stats {
    uint64_t calls, bytes, largest;
} alloc_stats;

/* Allocations before the constructor maps the file (the dynamic loader's) land here first. */
static alloc_stats early;
static alloc_stats *stats = &early;

static void note(size_t n)
{
    alloc_stats *s = stats;
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->bytes, (uint64_t)n, __ATOMIC_RELAXED);
    uint64_t big = __atomic_load_n(&s->largest, __ATOMIC_RELAXED);
    while (n > big && !__atomic_compare_exchange_n(&s->largest, &big, (uint64_t)n, 1,
                                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

__attribute__((constructor)) static void map_stats(void)
{
    const char *path = getenv("MORSEL_ALLOC_STATS");
    if (!path || !*path)
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return;
    void *p = MAP_FAILED;
    if (ftruncate(fd, sizeof(alloc_stats)) == 0)
        p = mmap(NULL, sizeof(alloc_stats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return;
    *(alloc_stats *)p = early;
    __atomic_store_n(&stats, (alloc_stats *)p, __ATOMIC_RELEASE);
}

void *malloc(size_t n)
{
    note(n);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    note(n * size);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    note(n);
    return __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
    note(n);
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    return memalign(align, n);
}

void *valloc(size_t n)
{
    return memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
