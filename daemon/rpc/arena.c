#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#define ALIGN 16u
/* A main block above this is not kept for the next request: lookups need kilobytes, and a
 * worker that once decoded a 5,000-row PushRows (~9 MB) should not hold that for good. Bigger
 * requests pay a malloc of their overflow instead. */
#define KEEP_MAX (1u << 20)

struct arena_block {
    struct arena_block *next;
    _Alignas(16) unsigned char data[];
};

static void *_protobuf_alloc(void *data, size_t size) {
    return arena_alloc(data, size);
}

static void _protobuf_free(void *data, void *ptr) {
    (void)data;
    (void)ptr; /* freed together at arena_reset() */
}

int arena_init(struct arena *a, size_t initial_bytes) {
    a->base = aligned_alloc(ALIGN, (initial_bytes + ALIGN - 1) & ~(size_t)(ALIGN - 1));
    a->used = 0;
    a->cap = a->base ? initial_bytes : 0;
    a->overflow = NULL;
    a->overflow_bytes = 0;
    a->protobuf.alloc = _protobuf_alloc;
    a->protobuf.free = _protobuf_free;
    a->protobuf.allocator_data = a;
    return a->base ? 0 : -1;
}

static void _free_overflow(struct arena *a) {
    for (struct arena_block *b = a->overflow, *next; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    a->overflow = NULL;
}

void arena_deinit(struct arena *a) {
    _free_overflow(a);
    free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

void *arena_alloc(struct arena *a, size_t n) {
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (n <= a->cap - a->used) {
        void *p = a->base + a->used;
        a->used += n;
        return p;
    }
    struct arena_block *b = malloc(sizeof(*b) + n);
    if (b == NULL) {
        return NULL;
    }
    b->next = a->overflow;
    a->overflow = b;
    a->overflow_bytes += n;
    return b->data;
}

void arena_reset(struct arena *a) {
    if (a->overflow != NULL) {
        /* This request needed more: size the main block for it so the next one won't. */
        size_t want = a->cap + a->overflow_bytes;
        _free_overflow(a);
        unsigned char *grown = want <= KEEP_MAX ? aligned_alloc(ALIGN, want) : NULL;
        if (grown != NULL) {
            free(a->base);
            a->base = grown;
            a->cap = want;
        }
    }
    a->used = 0;
    a->overflow_bytes = 0;
}
