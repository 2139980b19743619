/* The log-linear latency histogram: see histogram.h for the bucket layout. */
#include "histogram.h"

#include <string.h>

#define _LINEAR (2u << HISTOGRAM_SUB_BITS) /* values below this have one bucket each */
#define _HALF   (1u << HISTOGRAM_SUB_BITS) /* buckets per octave above */

void histogram_init(struct histogram *h) {
    memset(h, 0, sizeof(*h));
    h->min_ns = INT64_MAX;
}

uint32_t histogram_bucket(int64_t value_ns) {
    if (value_ns < 0) {
        value_ns = 0;
    }
    if (value_ns > HISTOGRAM_MAX_NS) {
        value_ns = HISTOGRAM_MAX_NS;
    }
    uint64_t v = (uint64_t)value_ns;
    if (v < _LINEAR) {
        return (uint32_t)v;
    }
    unsigned k = 63u - (unsigned)__builtin_clzll(v); /* v in [2^k, 2^(k+1)), k > SUB_BITS */
    unsigned shift = k - HISTOGRAM_SUB_BITS;
    uint32_t sub = (uint32_t)(v >> shift) - _HALF; /* 0 .. 127 */
    return _LINEAR + (k - HISTOGRAM_SUB_BITS - 1) * _HALF + sub;
}

int64_t histogram_bucket_low(uint32_t index) {
    if (index < _LINEAR) {
        return index;
    }
    uint32_t octave = (index - _LINEAR) / _HALF; /* 0 for [2^(SUB+1), 2^(SUB+2)) */
    uint32_t sub = (index - _LINEAR) % _HALF;
    unsigned shift = octave + 1;
    return (int64_t)(((uint64_t)_HALF + sub) << shift);
}

int64_t histogram_bucket_high(uint32_t index) {
    if (index < _LINEAR) {
        return index;
    }
    uint32_t octave = (index - _LINEAR) / _HALF;
    return histogram_bucket_low(index) + (INT64_C(1) << (octave + 1)) - 1;
}

void histogram_record(struct histogram *h, int64_t value_ns) {
    if (value_ns < 0) {
        value_ns = 0;
    }
    h->buckets[histogram_bucket(value_ns)]++;
    h->count++;
    h->sum_ns += (double)value_ns;
    if (value_ns < h->min_ns) {
        h->min_ns = value_ns;
    }
    if (value_ns > h->max_ns) {
        h->max_ns = value_ns;
    }
}

void histogram_merge(struct histogram *dst, const struct histogram *src) {
    for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    if (src->min_ns < dst->min_ns) {
        dst->min_ns = src->min_ns;
    }
    if (src->max_ns > dst->max_ns) {
        dst->max_ns = src->max_ns;
    }
}

int64_t histogram_percentile(const struct histogram *h, double p) {
    if (h->count == 0) {
        return 0;
    }
    if (p <= 0) {
        return h->min_ns;
    }
    if (p >= 100) {
        return h->max_ns;
    }
    /* rank: how many values are at or below the answer */
    double exact = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact || rank == 0) {
        rank++;
    }
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            int64_t high = histogram_bucket_high(i);
            if (high > h->max_ns) {
                high = h->max_ns;
            }
            return high < h->min_ns ? h->min_ns : high;
        }
    }
    return h->max_ns;
}

double histogram_mean(const struct histogram *h) {
    return h->count ? h->sum_ns / (double)h->count : 0;
}
