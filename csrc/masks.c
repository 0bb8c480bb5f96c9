/*
 * masks.c - random perturbation masks for RISE-style saliency (CorrRISE).
 *
 * Two families, both reproducible from (seed, mask index):
 *
 *  rise:    a (grid+1) x (grid+1) grid of cells kept with probability
 *           p_keep, upsampled bilinearly with a random sub-cell shift; values
 *           in [0, 1] (Petsiuk et al., RISE, BMVC 2018).
 *  rise orthogonal: the same cells and upsampling, but drawn in blocks whose
 *           cell columns are orthogonal and balanced (a Paley Hadamard design,
 *           p_keep = 1/2), so that within a block the score's linear part in
 *           the cells cancels exactly from every pixel's covariance estimate;
 *           each mask alone is still a uniform random RISE mask.
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

/* Bilinear upsampling of a (grid+1)^2 cell grid to an h x w mask, shifted by (shift_y, shift_x) pixels. */
static void upsample_cells(const float *cells, int grid, int cell_h, int cell_w, int shift_y, int shift_x, int h,
                           int w, float *mask) {
    const int g = grid + 1;
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
        upsample_cells(cells, grid, cell_h, cell_w, shift_y, shift_x, h, w, out + (size_t)i * h * w);
    }
    free(cells);
    }
    if (failed) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate a mask grid");
    return FX_STATUS_OK;
}

/* Orthogonal RISE masks.
 *
 * A Paley Hadamard matrix of order q + 1 (q the smallest prime = 3 mod 4 with
 * q >= cells), its rows scaled to start with +1, has q balanced, mutually
 * orthogonal +-1 columns: row r, column c in 1..q is +1 for r = 0, else
 * -1 if c = r and -chi(c - r mod q) otherwise (chi: quadratic character).
 * A block of q + 1 masks gives each cell its own column, chosen by a random
 * permutation and flipped by a random sign, with one random shift for the
 * whole block (a shared shift keeps every pixel a fixed mix of the same four
 * cells, so the orthogonality carries over to pixels). Mask i is row i mod
 * (q + 1) of block i / (q + 1); a block's draws come from its own stream. */

/* Salt separating the block streams from the per-mask streams of fx_masks_rise. */
#define ORTHOGONAL_SALT 0x4F5254484F474F4EULL

static int is_prime(int64_t n) {
    if (n < 2) return 0;
    for (int64_t d = 2; d * d <= n; ++d)
        if (n % d == 0) return 0;
    return 1;
}

static int64_t paley_prime(int64_t cells) {
    int64_t q = cells < 3 ? 3 : cells;
    while (!(q % 4 == 3 && is_prime(q))) ++q;
    return q;
}

int64_t fx_orthogonal_block_size(int grid) {
    if (grid < 1 || grid > 46340) return -1;
    return paley_prime((int64_t)(grid + 1) * (grid + 1)) + 1;
}

/* One block's column permutation (first `cells` entries used), signs and shift. */
typedef struct {
    int64_t block;
    int *column; /* [q] */
    signed char *sign; /* [cells] */
    int shift_y, shift_x;
} ortho_block;

static void draw_block(uint64_t seed, int64_t block, int q, int cells, int cell_h, int cell_w, ortho_block *b) {
    fx_rng rng = fx_rng_for(seed ^ ORTHOGONAL_SALT, (uint64_t)block);
    for (int c = 0; c < q; ++c) b->column[c] = c + 1;
    for (int c = q - 1; c > 0; --c) { /* Fisher-Yates */
        const int j = (int)fx_rng_below(&rng, c + 1);
        const int t = b->column[c];
        b->column[c] = b->column[j];
        b->column[j] = t;
    }
    for (int k = 0; k < cells; ++k) b->sign[k] = fx_rng_below(&rng, 2) ? 1 : -1;
    b->shift_y = (int)fx_rng_below(&rng, cell_h);
    b->shift_x = (int)fx_rng_below(&rng, cell_w);
    b->block = block;
}

fx_status fx_masks_rise_orthogonal(uint64_t seed, int64_t first, int count, int h, int w, int grid, float *out) {
    fx_status st = check_mask_shape(count, h, w, out);
    if (st) return st;
    if (first < 0 || grid < 1 || grid > h || grid > w)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                       "orthogonal rise masks need first >= 0 and 1 <= grid <= image size (grid %d)", grid);
    const int g = grid + 1, cells = g * g;
    const int64_t rows = fx_orthogonal_block_size(grid);
    const int q = (int)(rows - 1);
    const int cell_h = (h + grid - 1) / grid, cell_w = (w + grid - 1) / grid;
    /* chi[x] = +1 for a non-zero square mod q, -1 for a non-square, 0 for 0 */
    signed char *chi = malloc((size_t)q);
    if (!chi) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate a %d-entry residue table", q);
    memset(chi, -1, (size_t)q);
    chi[0] = 0;
    for (int64_t x = 1; x < q; ++x) chi[(x * x) % q] = 1;
    int failed = 0;
#pragma omp parallel
    {
    float *values = malloc((size_t)cells * sizeof(float));
    ortho_block b = {-1, malloc((size_t)q * sizeof(int)), malloc((size_t)cells), 0, 0};
    if (!values || !b.column || !b.sign) {
#pragma omp atomic write
        failed = 1;
    }
#pragma omp for schedule(static)
    for (int i = 0; i < count; ++i) {
        if (!values || !b.column || !b.sign) continue;
        const int64_t index = first + i, block = index / rows;
        const int r = (int)(index % rows);
        if (b.block != block) draw_block(seed, block, q, cells, cell_h, cell_w, &b);
        for (int k = 0; k < cells; ++k) {
            const int c = b.column[k];
            const int entry = r == 0 ? 1 : (c == r ? -1 : -chi[((c - r) % q + q) % q]);
            values[k] = entry * b.sign[k] > 0 ? 1.0f : 0.0f;
        }
        upsample_cells(values, grid, cell_h, cell_w, b.shift_y, b.shift_x, h, w, out + (size_t)i * h * w);
    }
    free(values);
    free(b.column);
    free(b.sign);
    }
    free(chi);
    if (failed) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate an orthogonal mask block");
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
