#pragma once
/*
 * A log-linear latency histogram in nanoseconds, fixed size, no allocation: record from the
 * hot loop, merge per-thread copies at the end, read percentiles.
 *
 * Values below 256 ns each have a bucket. Above, every power-of-two octave [2^k, 2^(k+1)) is
 * cut into 128 equal buckets, so a bucket is at most 1/128 of its values wide: any value is
 * known to within 0.8% (0.4% from the bucket's middle), from 1 us up to the top.
 *
 *   index:   0 .. 255        | 256 .. 383       | 384 .. 511       | ... | 3712 .. 3839
 *   values:  0 .. 255 ns     | 256 .. 510 ns    | 512 .. 1020 ns   | ... | 2^35 .. 2^36 ns
 *   width:   1 ns            | 2 ns             | 4 ns             | ... | 2^28 ns
 *
 * 2^36 ns is 68.7 s; longer values are counted in the last bucket (and max stays exact).
 */
#include <stdint.h>

/* ---- defaults ---------------------------------------------------------------------------- */

#define HISTOGRAM_SUB_BITS 7 /* 2^7 buckets per octave */
#define HISTOGRAM_TOP_BITS 36
#define HISTOGRAM_MAX_NS   ((INT64_C(1) << HISTOGRAM_TOP_BITS) - 1)
#define HISTOGRAM_BUCKETS                                                                          \
    ((2 << HISTOGRAM_SUB_BITS) +                                                                   \
     (HISTOGRAM_TOP_BITS - HISTOGRAM_SUB_BITS - 1) * (1 << HISTOGRAM_SUB_BITS))

/* ---- the histogram ----------------------------------------------------------------------- */

struct histogram {
    uint64_t count;
    int64_t min_ns; /* exact; INT64_MAX while empty */
    int64_t max_ns; /* exact; 0 while empty */
    double sum_ns;
    uint64_t buckets[HISTOGRAM_BUCKETS];
};

/* Empties `h` (caller memory, ~30 KiB). */
void histogram_init(struct histogram *h);

/* Counts one value; negative values count as 0. */
void histogram_record(struct histogram *h, int64_t value_ns);

/* Adds every count of `src` to `dst`. */
void histogram_merge(struct histogram *dst, const struct histogram *src);

/*
 * The value at percentile `p` (0..100): the highest value of the bucket that holds the
 * ceil(p/100 * count)-th smallest value, capped by the exact max (so p=100 is max). 0 when
 * empty.
 */
int64_t histogram_percentile(const struct histogram *h, double p);

/* Mean of the recorded values, 0 when empty. */
double histogram_mean(const struct histogram *h);

/* The bucket a value falls in, and the lowest/highest value of a bucket (for tests). */
uint32_t histogram_bucket(int64_t value_ns);
int64_t histogram_bucket_low(uint32_t index);
int64_t histogram_bucket_high(uint32_t index);
