/*
 * saliency.c - the arithmetic of perturbation-based explanations.
 *
 * Kernels for building perturbed batches (masking, occluding), scoring their
 * embeddings against a partner, and reducing the results to per-pixel maps
 * in a streaming way (sums that grow with pixels, never with the number of
 * perturbations). Each kernel has a NumPy twin in
 * fxplain/methods/reference.py that the tests compare against.
 */
#include <math.h>
#include <string.h>

#include "fx_internal.h"

fx_status fx_apply_masks(int count, int h, int w, int c, const float *image, const float *fill,
                         const float *masks, float *out) {
    if (count < 0 || h < 1 || w < 1 || c < 1 || !image || !fill || !masks || !out)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "apply_masks: bad shape or NULL buffer");
    const size_t pixels = (size_t)h * w;
    /* one image per thread: memory-bound, and the batch is large enough to split */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < count; ++i) {
        const float *m = masks + i * pixels;
        float *o = out + i * pixels * c;
        for (size_t p = 0; p < pixels; ++p)
            for (int k = 0; k < c; ++k) {
                const size_t at = p * c + k;
                o[at] = fill[at] + m[p] * (image[at] - fill[at]);
            }
    }
    return FX_STATUS_OK;
}

fx_status fx_occlude(int count, int h, int w, int c, const float *image, const float *fill,
                     const int32_t *rects, float *out) {
    if (count < 0 || h < 1 || w < 1 || c < 1 || !image || !fill || !rects || !out)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "occlude: bad shape or NULL buffer");
    const size_t size = (size_t)h * w * c;
    for (int i = 0; i < count; ++i) { /* validate every rectangle before writing anything */
        const int32_t top = rects[4 * i], left = rects[4 * i + 1];
        const int32_t bottom = rects[4 * i + 2], right = rects[4 * i + 3];
        if (top < 0 || left < 0 || bottom > h || right > w || top >= bottom || left >= right)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "occlude: rectangle %d (%d, %d, %d, %d) is outside %dx%d", i,
                           top, left, bottom, right, h, w);
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < count; ++i) {
        const int32_t top = rects[4 * i], left = rects[4 * i + 1];
        const int32_t bottom = rects[4 * i + 2], right = rects[4 * i + 3];
        float *o = out + i * size;
        memcpy(o, image, size * sizeof(float));
        for (int y = top; y < bottom; ++y) {
            const size_t row = ((size_t)y * w + left) * c;
            memcpy(o + row, fill + row, (size_t)(right - left) * c * sizeof(float));
        }
    }
    return FX_STATUS_OK;
}

fx_status fx_embedding_scores(fx_score_kind kind, int n, int dim, const float *emb, const float *ref,
                              double *out) {
    if (n < 0 || dim < 1 || !emb || !ref || !out)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "scores: bad shape or NULL buffer");
    if (kind != FX_SCORE_NEG_SQUARED_EUCLIDEAN && kind != FX_SCORE_COSINE)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "scores: unknown score kind %d", (int)kind);
    double ref_norm = 0;
    for (int k = 0; k < dim; ++k) ref_norm += (double)ref[k] * ref[k];
    ref_norm = sqrt(ref_norm);
    for (int i = 0; i < n; ++i) {
        const float *e = emb + (size_t)i * dim;
        double acc = 0, norm = 0;
        if (kind == FX_SCORE_NEG_SQUARED_EUCLIDEAN) {
            for (int k = 0; k < dim; ++k) {
                const double d = (double)e[k] - ref[k];
                acc += d * d;
            }
            out[i] = -acc;
        } else {
            for (int k = 0; k < dim; ++k) {
                acc += (double)e[k] * ref[k];
                norm += (double)e[k] * e[k];
            }
            const double denom = sqrt(norm) * ref_norm;
            out[i] = acc / (denom > 1e-12 ? denom : 1e-12);
        }
    }
    return FX_STATUS_OK;
}

fx_status fx_correlation_accumulate(int count, size_t pixels, const float *masks, const double *scores,
                                    double *sum_m, double *sum_mm, double *sum_ms) {
    if (count < 0 || !masks || !scores || !sum_m || !sum_mm || !sum_ms)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "correlation_accumulate: NULL buffer");
    /* mask-major loops keep each mask row in cache while the three sums stream */
    for (int i = 0; i < count; ++i) {
        const float *m = masks + (size_t)i * pixels;
        const double s = scores[i];
        for (size_t p = 0; p < pixels; ++p) {
            const double v = m[p];
            sum_m[p] += v;
            sum_mm[p] += v * v;
            sum_ms[p] += v * s;
        }
    }
    return FX_STATUS_OK;
}

fx_status fx_rect_accumulate(int count, int h, int w, const int32_t *rects, const double *values,
                             double *sum, double *hits) {
    if (count < 0 || h < 1 || w < 1 || !rects || !values || !sum || !hits)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "rect_accumulate: bad shape or NULL buffer");
    for (int i = 0; i < count; ++i) {
        const int32_t top = rects[4 * i], left = rects[4 * i + 1];
        const int32_t bottom = rects[4 * i + 2], right = rects[4 * i + 3];
        if (top < 0 || left < 0 || bottom > h || right > w || top >= bottom || left >= right)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "rect_accumulate: rectangle %d is outside %dx%d", i, h, w);
        for (int y = top; y < bottom; ++y)
            for (int x = left; x < right; ++x) {
                sum[(size_t)y * w + x] += values[i];
                hits[(size_t)y * w + x] += 1.0;
            }
    }
    return FX_STATUS_OK;
}
