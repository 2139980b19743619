#pragma once
/*
 * A per-worker bump allocator for request-scoped memory (decoded protobuf requests, scratch
 * arrays). Allocation is a pointer bump; arena_reset() at the end of a request frees nothing
 * but the overflow blocks, and grows the main block so the next request of that size fits.
 */
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct arena_block;

struct arena {
    unsigned char *base;
    size_t used;
    size_t cap;
    size_t overflow_bytes;
    struct arena_block *overflow; /* blocks malloc'd when `base` was full */
    ProtobufCAllocator protobuf;  /* hands this arena to protobuf-c's unpack */
};

int arena_init(struct arena *a, size_t initial_bytes);
void arena_deinit(struct arena *a);

/* Returns `n` bytes aligned to 16, or NULL when out of memory. Valid until arena_reset(). */
void *arena_alloc(struct arena *a, size_t n);

/* Forgets every allocation. */
void arena_reset(struct arena *a);
