/*
 * preprocess.c - the input stage of every network: pixels to network input.
 *
 * Kept in plain C rather than a oneDNN primitive because oneDNN's reorder
 * can scale but not shift by a per-channel constant; the loop is memory-bound
 * and vectorises.
 */
#include "fx_internal.h"

void fx_normalize_nhwc(const float *src, float *dst, size_t pixels, int c, const float *mean,
                       const float *scale) {
    if (c == 3) { /* the common RGB case, unrolled so the compiler vectorises it */
        const float m0 = mean[0], m1 = mean[1], m2 = mean[2];
        const float s0 = scale[0], s1 = scale[1], s2 = scale[2];
        for (size_t p = 0; p < pixels; ++p) {
            dst[3 * p + 0] = (src[3 * p + 0] - m0) * s0;
            dst[3 * p + 1] = (src[3 * p + 1] - m1) * s1;
            dst[3 * p + 2] = (src[3 * p + 2] - m2) * s2;
        }
        return;
    }
    for (size_t p = 0; p < pixels; ++p)
        for (int k = 0; k < c; ++k) dst[p * c + k] = (src[p * c + k] - mean[k]) * scale[k];
}
