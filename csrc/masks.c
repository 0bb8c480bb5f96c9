/*
 * masks.c - random perturbation masks for RISE-style saliency (CorrRISE).
 *
 * Two families, both reproducible from (seed, mask index):
 *
 *  rise:    a (grid+1) x (grid+1) grid of cells kept with probability
 *           p_keep, upsampled bilinearly with a random sub-cell shift; values
 *           in [0, 1] (Petsiuk et al., RISE, BMVC 2018).
 *  patches: binary; ones except `holes` random squares of side `patch`.
 *
 * The exact formulas are mirrored in fxplain/methods/reference.py.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fx_internal.h"
#include "rng.h"

static fx_status check_mask_shape(int count, int h, int w, const float *out) {
    if (count < 0 || h < 1 || w < 1 || !out)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "masks need count >= 0, a positive size and a buffer");
    return FX_STATUS_OK;
}

fx_status fx_masks_rise(uint64_t seed, int64_t first, int count, int h, int w, int grid, double p_keep,
                        float *out) {
    fx_status st = check_mask_shape(count, h, w, out);
    if (st) return st;
    if (grid < 1 || grid > h || grid > w || !(p_keep >= 0.0 && p_keep <= 1.0))
        return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                       "rise masks need 1 <= grid <= image size and 0 <= p_keep <= 1 (grid %d, p_keep %g)",
                       grid, p_keep);
    const int g = grid + 1;
    const int cell_h = (h + grid - 1) / grid, cell_w = (w + grid - 1) / grid;
    int failed = 0;
    /* masks are independent streams, so they fill in parallel */
#pragma omp parallel
    {
    float *cells = malloc((size_t)g * g * sizeof(float));
    if (!cells) {
#pragma omp atomic write
        failed = 1;
    }
#pragma omp for schedule(static)
    for (int i = 0; i < count; ++i) {
        if (!cells) continue;
        fx_rng rng = fx_rng_for(seed, (uint64_t)(first + i));
        for (int k = 0; k < g * g; ++k) cells[k] = fx_rng_uniform(&rng) < p_keep ? 1.0f : 0.0f;
        const int shift_y = (int)fx_rng_below(&rng, cell_h), shift_x = (int)fx_rng_below(&rng, cell_w);
        float *mask = out + (size_t)i * h * w;
        for (int y = 0; y < h; ++y) {
            /* grid coordinate of the pixel centre, clamped to the grid */
            double gy = (y + shift_y + 0.5) / cell_h - 0.5;
            gy = gy < 0 ? 0 : (gy > grid ? grid : gy);
            int y0 = (int)gy;
            if (y0 > grid - 1) y0 = grid - 1;
            const float fy = (float)(gy - y0);
            for (int x = 0; x < w; ++x) {
                double gx = (x + shift_x + 0.5) / cell_w - 0.5;
                gx = gx < 0 ? 0 : (gx > grid ? grid : gx);
                int x0 = (int)gx;
                if (x0 > grid - 1) x0 = grid - 1;
                const float fx = (float)(gx - x0);
                const float *c = cells + y0 * g + x0;
                const float top = c[0] + fx * (c[1] - c[0]);
                const float bottom = c[g] + fx * (c[g + 1] - c[g]);
                mask[y * w + x] = top + fy * (bottom - top);
            }
        }
    }
    free(cells);
    }
    if (failed) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate a mask grid");
    return FX_STATUS_OK;
}

fx_status fx_masks_patches(uint64_t seed, int64_t first, int count, int h, int w, int patch, int holes,
                           float *out) {
    fx_status st = check_mask_shape(count, h, w, out);
    if (st) return st;
    if (patch < 1 || patch > h || patch > w || holes < 1)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                       "patch masks need 1 <= patch <= image size and holes >= 1 (patch %d, holes %d)", patch,
                       holes);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < count; ++i) {
        fx_rng rng = fx_rng_for(seed, (uint64_t)(first + i));
        float *mask = out + (size_t)i * h * w;
        for (size_t k = 0; k < (size_t)h * w; ++k) mask[k] = 1.0f;
        for (int k = 0; k < holes; ++k) {
            const int top = (int)fx_rng_below(&rng, h - patch + 1);
            const int left = (int)fx_rng_below(&rng, w - patch + 1);
            for (int y = top; y < top + patch; ++y) memset(mask + (size_t)y * w + left, 0, (size_t)patch * sizeof(float));
        }
    }
    return FX_STATUS_OK;
}
