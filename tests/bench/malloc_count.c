/* Counts the heap allocations of a whole process, for the benchmark's
 * allocations-per-record figure: preload it, and at exit it appends
 * "<allocations> <bytes>" to the file named by $MALLOC_COUNT_FILE.
 *
 *   LD_PRELOAD=libmalloc_count.so MALLOC_COUNT_FILE=counts sluice run ...
 *
 * Run the same job at two sizes: the difference over the difference in
 * records is what each record costs, whatever start-up allocates. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_ullong allocations, bytes;

static void count(size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&bytes, n, memory_order_relaxed);
}

void *malloc(size_t n) {
    count(n);
    return __libc_malloc(n);
}
void *calloc(size_t k, size_t n) {
    count(k * n);
    return __libc_calloc(k, n);
}
void *realloc(void *p, size_t n) {
    count(n);
    return __libc_realloc(p, n);
}
void *memalign(size_t align, size_t n) {
    count(n);
    return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n) {
    count(n);
    return __libc_memalign(align, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
    count(n);
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
void free(void *p) { __libc_free(p); }

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (!path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "%llu %llu\n", (unsigned long long)atomic_load(&allocations), (unsigned long long)atomic_load(&bytes));
    fclose(f);
}
