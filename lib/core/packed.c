/* The packed weights of all ops in one block, filled once every op has been prepared (and so
 * has said what it packs, op->pack). One allocation instead of one per op matters for load
 * time: the copies themselves are a few ms for 10 MB, but each fresh 4 KiB page costs a page
 * fault, and those faults were most of a MobileNetV2 load. The block is a private anonymous
 * mapping started on a 2 MiB boundary and advised for transparent huge pages, so where the
 * kernel allows them (THP "madvise" or "always") a 2 MiB page arrives in one fault; its tail
 * past the last whole 2 MiB stays in 4 KiB pages, so no more memory is resident than packed.
 * On shared VMs that huge-page fault is a gamble at load: 0.15-0.2 ms/MB when the host still
 * backs the memory, up to 3.9 ms/MB when it has taken it back (ResNet50V2's 136 MB block loads
 * in 100-730 ms), where 4 KiB pages populated by the mmap cost a steady 0.35 ms/MB (110-180 ms).
 * But the weights are streamed on every inference, and on 4 KiB pages the TLB misses slow each
 * one: 10 alternating processes, 1 thread, median: ResNet50V2 61.5 -> 67.0 ms, Xception
 * 173.9 -> 178.8; in one process, taking turns (test/bench/morsel_ab_inproc): ResNet50V2 6.2 %,
 * MobileNetV2 1.2 %. So huge pages by default, and the caller who opens a model for one
 * image picks 4 KiB ones (morsel_open_options.pages; the CLI's classify). A pre-packed layout
 * in the file would avoid both costs.
 * Ops asking for the same packing of the same constant share one copy (find_leaders). */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS, madvise */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model.h"

#define ALIGN 64
#define PAGE 4096u
#define HUGE_PAGE ((size_t)2 << 20)

/* Under AddressSanitizer each op's weights are followed by a poisoned gap, so a kernel reading
 * past its panels is caught as it was when each op had its own heap block. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MF_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(MF_ASAN)
#include <sanitizer/asan_interface.h>
#define GAP ALIGN
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define GAP 0
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* Bytes an op's request takes in the block, its gap included (never 0, so each op has its own
 * address). */
static size_t request_bytes(const mf_pack_request *r)
{
    return round_up(r->floats ? r->floats * sizeof(float) : 1, ALIGN) + GAP;
}

/* `bytes` of zeroed, writable memory, *mapped its length: 2 MiB-aligned and advised for huge
 * pages when that large, unless `small` (morsel_open_options.pages), which advises against
 * them, so THP "always" does not bring them back. */
static void *map_block(size_t bytes, size_t *mapped, int small)
{
    size_t len = round_up(bytes, PAGE);
    size_t slack = len >= HUGE_PAGE && !small ? HUGE_PAGE : 0; /* room to slide to 2 MiB */
    if (len > SIZE_MAX - slack)
        return NULL;
    uint8_t *p = mmap(NULL, len + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_NOHUGEPAGE
    if (small)
        madvise(p, len, MADV_NOHUGEPAGE); /* advice, as below */
#endif
    if (slack) {
        size_t head = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
        if (head)
            munmap(p, head);
        if (slack - head)
            munmap(p + head + len, slack - head);
        p += head;
#ifdef MADV_HUGEPAGE
        madvise(p, len, MADV_HUGEPAGE); /* advice: refused or ignored, the 4 KiB pages remain */
#endif
    }
    *mapped = len;
    return p;
}

/* The constant tensor an op's pack request reads, or MF_NO_TENSOR. */
static uint32_t pack_source(const morsel_model *m, const mf_op *op)
{
    for (uint32_t j = 0; j < op->n_in; j++)
        if (m->tensors[op->in[j]].data == op->pack.w)
            return op->in[j];
    return MF_NO_TENSOR;
}

/* How many pack requests read each constant, UINT32_MAX where anything else reads it in place
 * (a reference kernel, a bias): NULL when the file is not our own mapping, or out of memory. */
static uint32_t *count_pack_readers(const morsel_model *m)
{
    if (!m->owned_is_mmap)
        return NULL; /* a caller's buffer, or our heap copy: left as it is */
    uint32_t *readers = calloc(m->n_tensors, sizeof *readers);
    for (uint32_t i = 0; readers && i < m->n_ops; i++) {
        const mf_op *op = &m->ops[i];
        uint32_t src = op->pack.fn ? pack_source(m, op) : MF_NO_TENSOR;
        for (uint32_t j = 0; j < op->n_in; j++) {
            uint32_t t = op->in[j];
            if (!m->tensors[t].is_const || readers[t] == UINT32_MAX)
                continue;
            readers[t] = t == src ? readers[t] + 1 : UINT32_MAX;
        }
    }
    return readers;
}

/* Once packed, a constant nothing else reads is dead weight in our mapping of the file: its
 * whole pages are dropped from it (the page cache keeps them for other processes), so the
 * weights are resident once, packed, and the peak stays near the file's size instead of
 * twice it. Nothing reads those bytes again; a read would fetch them from the file anew. */
static void release_source(const mf_tensor *t)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    uintptr_t pg = (uintptr_t)page, start = (uintptr_t)t->data;
    uintptr_t a = round_up(start, pg), e = (start + t->count * sizeof(float)) / pg * pg;
    if (e > a)
        madvise((void *)a, e - a, MADV_DONTNEED); /* advice: on failure the pages just stay */
}

typedef struct pack_key {
    uintptr_t w;
    int K, N;
    uint32_t op;
} pack_key;

static int by_key(const void *pa, const void *pb)
{
    const pack_key *a = pa, *b = pb;
    if (a->w != b->w)
        return a->w < b->w ? -1 : 1;
    if (a->K != b->K)
        return a->K < b->K ? -1 : 1;
    if (a->N != b->N)
        return a->N < b->N ? -1 : 1;
    return a->op < b->op ? -1 : a->op > b->op;
}

/* leader[i]: the op whose packed copy op i uses, i itself or the first op asking for the same
 * packing of the same weights. Real models never share a kernel between layers, but a file
 * can (any number of convs reading one constant): one copy each would let a small file make
 * the load pack, and hold, many times its size. Sorting finds the groups in n log n. */
static uint32_t *find_leaders(const morsel_model *m)
{
    uint32_t *leader = malloc(sizeof *leader * ((size_t)m->n_ops + 1));
    pack_key *keys = malloc(sizeof *keys * ((size_t)m->n_ops + 1));
    if (!leader || !keys) {
        free(leader);
        free(keys);
        return NULL;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        const mf_pack_request *r = &m->ops[i].pack;
        leader[i] = i;
        if (r->fn)
            keys[n++] = (pack_key){(uintptr_t)r->w, r->K, r->N, i};
    }
    qsort(keys, n, sizeof *keys, by_key);
    for (uint32_t j = 1, first = 0; j < n; j++) {
        const pack_key *a = &keys[first], *b = &keys[j];
        if (a->w == b->w && a->K == b->K && a->N == b->N &&
            m->ops[a->op].pack.fn == m->ops[b->op].pack.fn)
            leader[b->op] = a->op;
        else
            first = j;
    }
    free(keys);
    return leader;
}

morsel_status mf_pack_weights(morsel_model *m, morsel_error *err)
{
    uint32_t *leader = find_leaders(m);
    if (!leader)
        return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory");
    size_t total = 0;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        const mf_pack_request *r = &m->ops[i].pack;
        if (!r->fn || leader[i] != i)
            continue;
        size_t bytes = r->floats > SIZE_MAX / sizeof(float) - 2 * ALIGN ? SIZE_MAX
                                                                       : request_bytes(r);
        if (bytes > SIZE_MAX - total) {
            free(leader);
            return morsel_fail(err, MORSEL_ERR_NOMEM, "packed weights exceed the address space");
        }
        total += bytes;
    }
    uint8_t *block = total ? map_block(total, &m->packed_mapped, m->small_pages) : NULL;
    if (!total || !block) {
        free(leader);
        return total ? morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory packing %zu MB of weights",
                                   total >> 20)
                     : MORSEL_OK;
    }
    m->packed_block = block;
    uint32_t *readers = count_pack_readers(m);
    size_t off = 0;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        mf_op *op = &m->ops[i];
        const mf_pack_request *r = &op->pack;
        if (!r->fn)
            continue;
        double t = mf_now_ms();
        if (leader[i] != i) { /* packed already, by an earlier op */
            op->packed = m->ops[leader[i]].packed;
        } else {
            op->packed = (float *)(void *)(block + off);
            r->fn(r->K, r->N, r->w, op->packed);
            off += request_bytes(r);
            POISON(block + off - GAP, GAP);
        }
        uint32_t src = readers ? pack_source(m, op) : MF_NO_TENSOR;
        if (src != MF_NO_TENSOR && readers[src] != UINT32_MAX && --readers[src] == 0)
            release_source(&m->tensors[src]);
        op->prepare_ms += mf_now_ms() - t;
    }
    free(readers);
    free(leader);
    return MORSEL_OK;
}

void mf_pack_free(morsel_model *m)
{
    if (!m->packed_block)
        return;
    UNPOISON(m->packed_block, m->packed_mapped); /* the addresses may be mapped again */
    munmap(m->packed_block, m->packed_mapped);
}
