/*
 * pyramid.c - the input of dlib's CNN face detector (mmod_human_face_detector):
 * dlib 19.24's input_rgb_image_pyramid<pyramid_down<6>> and pyramid_up.
 *
 * dlib tiles an image pyramid into one image: level 0 is the photo, each next
 * level is the previous one scaled by 5/6 (sizes floor(5/6 * n), down to 5
 * rows), the levels stacked in a first column and then, upward from the
 * bottom, in a second column at the right edge (impl::
 * compute_tiled_image_pyramid_details, image_transforms/image_pyramid.h).
 * The network's input tensor is that tiled image, normalised per channel as
 * (pixel - mean) / 256 and zero everywhere between the tiles; the levels are
 * resampled from the *normalised* previous level by dlib's float bilinear
 * resize_image (the SSE path of interpolation.h: x coordinates accumulated in
 * float four columns at a time, the last columns in double), which this file
 * reproduces operation by operation. pyramid_up (pyramid_down<2>'s inverse,
 * used to upsample a photo) is the RGB uint8 resize_image onto 2h+1 rows and
 * 2w+2 columns, values truncated. The NumPy twin is fxplain/faces/reference.py.
 * Three guards dlib does not have (a SIMD group past the last column, a
 * coordinate past the last row or column) keep any caller's layout in
 * bounds; they never fire where dlib's own code stays in bounds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fx_internal.h"

/* dlib's find_pyramid_down_output_image_size for pyramid_down<6>: floor(5/6 * n). */
static long down6(long n) { return (long)floor((5.0 / 6.0) * (double)n); }

fx_status fx_tiled_pyramid_layout(int height, int width, int padding, int outer_padding, int max_levels,
                                  int *levels, int32_t *rects, int *out_height, int *out_width) {
    if (height < 1 || width < 1 || height > (1 << 20) || width > (1 << 20) || padding < 0 || padding > 1000 ||
        outer_padding < 0 || outer_padding > 1000 || max_levels < 1)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid_layout: bad size %dx%d or padding %d, %d",
                       height, width, padding, outer_padding);
    long nr = height, nc = width, n = 0;
    long rl[128][4]; /* l, t, r, b of each level, at the origin first */
    rl[n][0] = 0, rl[n][1] = 0, rl[n][2] = nc - 1, rl[n][3] = nr - 1, ++n;
    for (;;) {
        nr = down6(nr), nc = down6(nc);
        if (nr * nc == 0 || nr < 5) break;
        if (n == 128 || n == max_levels)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid_layout: more than %d levels", (int)n);
        rl[n][0] = 0, rl[n][1] = 0, rl[n][2] = nc - 1, rl[n][3] = nr - 1, ++n;
    }
    const long pad = padding, outer = outer_padding;
    long total_height = 0;
    for (long i = 0; i < n; ++i) total_height += rl[i][3] + 1 + pad;
    total_height -= pad * 2;
    const long h0 = rl[0][3] + 1, w0 = rl[0][2] + 1;
    long height_used = 0, prev_width = 0;
    for (long i = 0; i < n; ++i) {
        const long wi = rl[i][2] + 1;
        if (wi <= w0 - prev_width - pad && (height_used - h0) * 2 >= total_height - h0) break;
        height_used += rl[i][3] + 1 + pad;
        prev_width = wi;
    }
    height_used -= pad;
    const long out_h = height_used + outer * 2, out_w = w0 + outer * 2;
    long y = outer, i = 0;
    while (y < height_used + outer && i < n) {
        const long hi = rl[i][3] + 1, wi = rl[i][2] + 1;
        rl[i][0] = outer, rl[i][1] = y, rl[i][2] = outer + wi - 1, rl[i][3] = y + hi - 1;
        y += hi + pad;
        ++i;
    }
    y -= pad;
    while (i < n) {
        /* rectangle(p1, p1 - br_corner) with p1 = (outer + width - 1, y - 1) */
        const long px = outer + w0 - 1, py = y - 1;
        const long l = px - rl[i][2], t = py - rl[i][3];
        /* don't keep going if it would intersect the photo's level */
        if (!(l > rl[0][2] || px < rl[0][0] || t > rl[0][3] || py < rl[0][1])) break;
        rl[i][0] = l, rl[i][1] = t, rl[i][2] = px, rl[i][3] = py;
        y -= (py - t + 1) + pad;
        ++i;
    }
    n = i;
    for (long k = 0; k < n; ++k) {
        if (rl[k][0] < 0 || rl[k][1] < 0 || rl[k][2] >= out_w || rl[k][3] >= out_h)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid_layout: level %d falls outside the image",
                           (int)k);
        for (int j = 0; j < 4; ++j) rects[4 * k + j] = (int32_t)rl[k][j];
    }
    if (out_h > INT32_MAX || out_w > INT32_MAX)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid_layout: image too large");
    *levels = (int)n;
    *out_height = (int)out_h;
    *out_width = (int)out_w;
    return FX_STATUS_OK;
}

/* dlib's bilinear row walk: destination row r of dnr reads source rows top and
 * bottom (of snr) with weight tb_frac on bottom; y accumulated in double as dlib
 * does, so that every row lands where dlib's lands. */
typedef struct {
    double y, y_scale;
    long snr;
} row_walk;

static void row_walk_start(row_walk *w, long snr, long dnr) {
    w->y_scale = (snr - 1) / (double)(dnr - 1 > 1 ? dnr - 1 : 1);
    w->y = -w->y_scale;
    w->snr = snr;
}

static void row_walk_next(row_walk *w, long *top, long *bottom, double *tb_frac) {
    w->y += w->y_scale;
    *top = (long)floor(w->y) < w->snr - 1 ? (long)floor(w->y) : w->snr - 1; /* y drifts by rounding only */
    *bottom = *top + 1 < w->snr - 1 ? *top + 1 : w->snr - 1;
    *tb_frac = w->y - *top;
}

/* One destination row of dlib's resize_image(float gray -> float gray,
 * bilinear), SSE path, for one channel of interleaved rows (`step` floats
 * between pixels): st and sb are the source rows above and below. */
static void resize_row(const float *st, const float *sb, long snc, double tb_frac, float *dr, long dnc, long step) {
    const double x_scale = (snc - 1) / (double)(dnc - 1 > 1 ? dnc - 1 : 1);
    const float tbf = (float)tb_frac, itbf = (float)(1 - tb_frac), xs4 = (float)(4 * x_scale);
    double x = -4 * x_scale;
    float xv[4] = {(float)x, (float)(x + x_scale), (float)(x + 2 * x_scale), (float)(x + 3 * x_scale)};
    long c = 0;
    for (;; c += 4) {
        int32_t left[4];
        float tlf[4], trf[4], blf[4], brf[4];
        for (int k = 0; k < 4; ++k) {
            xv[k] += xs4;
            left[k] = (int32_t)xv[k]; /* truncation, _mm_cvttps_epi32 */
            const float lr = xv[k] - (float)left[k], ilr = 1 - lr;
            tlf[k] = itbf * ilr, trf[k] = itbf * lr, blf[k] = tbf * ilr, brf[k] = tbf * lr;
        }
        if (left[3] + 1 >= snc || c + 3 >= dnc) break; /* dlib: the first test only */
        for (int k = 0; k < 4; ++k) {
            const long lo = left[k] * step, hi = (left[k] + 1) * step;
            float out = tlf[k] * st[lo];
            out = out + trf[k] * st[hi];
            out = out + blf[k] * sb[lo];
            out = out + brf[k] * sb[hi];
            dr[(c + k) * step] = out;
        }
    }
    x = -x_scale + c * x_scale;
    for (; c < dnc; ++c) {
        x += x_scale;
        const long left = (long)floor(x) < snc - 1 ? (long)floor(x) : snc - 1;
        const long right = left + 1 < snc - 1 ? left + 1 : snc - 1;
        const float lr = (float)(x - left);
        const float tl = st[left * step], tr = st[right * step], bl = sb[left * step], br = sb[right * step];
        const float upper = (1 - lr) * tl + lr * tr, lower = (1 - lr) * bl + lr * br;
        dr[c * step] = (float)((1 - tb_frac) * (double)upper + tb_frac * (double)lower);
    }
}

/* Row r of level 0 as the network sees it: (pixel - mean) / 256. */
static void normalised_row(const uint8_t *image, int width, long r, const float mean[3], float *out) {
    const uint8_t *p = image + (size_t)r * (size_t)width * 3;
    for (long c = 0; c < width; ++c)
        for (int k = 0; k < 3; ++k) out[c * 3 + k] = ((float)p[c * 3 + k] - mean[k]) / 256.0f;
}

static long level_rows(const int32_t *q) { return (long)q[3] - q[1] + 1; }
static long level_cols(const int32_t *q) { return (long)q[2] - q[0] + 1; }

static fx_status check_levels(int height, int width, int levels, const int32_t *rects, int out_width) {
    if (height < 1 || width < 1 || height > (1 << 20) || width > (1 << 20) || levels < 1 || levels > 128 ||
        out_width < 1)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid: bad sizes");
    for (int i = 0; i < levels; ++i) {
        const int32_t *q = rects + 4 * i;
        if (q[0] < 0 || q[1] < 0 || q[2] < q[0] || q[3] < q[1] || q[2] >= out_width || q[3] >= (1 << 30) ||
            (i == 0 && (level_cols(q) != width || level_rows(q) != height)))
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid: level %d rectangle does not fit", i);
    }
    return FX_STATUS_OK;
}

size_t fx_pyramid_store_floats(int levels, const int32_t *rects) {
    size_t n = 0;
    for (int i = 1; i < levels; ++i) n += (size_t)level_rows(rects + 4 * i) * (size_t)level_cols(rects + 4 * i) * 3;
    return n;
}

fx_status fx_pyramid_levels(int height, int width, const uint8_t *image, const float mean[3], int levels,
                            const int32_t *rects, float *store) {
    fx_status st = check_levels(height, width, levels, rects, INT32_MAX);
    if (st || levels == 1) return st;
    /* level 1 is resampled from level 0 normalised, two rows at a time, never stored */
    float *rows = malloc(sizeof(float) * 6 * (size_t)width);
    if (!rows) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "tiled_pyramid: out of memory");
    float *top_row = rows, *bottom_row = rows + 3 * (size_t)width;
    const int32_t *q = rects + 4;
    float *d = store;
    row_walk walk;
    row_walk_start(&walk, height, level_rows(q));
    for (long r = 0; r < level_rows(q); ++r) {
        long top, bottom;
        double tb;
        row_walk_next(&walk, &top, &bottom, &tb);
        normalised_row(image, width, top, mean, top_row);
        normalised_row(image, width, bottom, mean, bottom_row);
        for (int k = 0; k < 3; ++k) resize_row(top_row + k, bottom_row + k, width, tb, d + k, level_cols(q), 3);
        d += level_cols(q) * 3;
    }
    free(rows);
    const float *s = store;
    for (int i = 2; i < levels; ++i) {
        const int32_t *a = rects + 4 * (i - 1), *b = rects + 4 * i;
        const long s_row = level_cols(a) * 3, d_row = level_cols(b) * 3;
        row_walk_start(&walk, level_rows(a), level_rows(b));
        for (long r = 0; r < level_rows(b); ++r) {
            long top, bottom;
            double tb;
            row_walk_next(&walk, &top, &bottom, &tb);
            for (int k = 0; k < 3; ++k)
                resize_row(s + top * s_row + k, s + bottom * s_row + k, level_cols(a), tb, d + r * d_row + k,
                           level_cols(b), 3);
        }
        s += level_rows(a) * s_row;
        d += level_rows(b) * d_row;
    }
    return FX_STATUS_OK;
}

fx_status fx_tiled_pyramid_rows(int height, int width, const uint8_t *image, const float mean[3], int levels,
                                const int32_t *rects, const float *store, int out_width, int row0, int row1,
                                float *out) {
    fx_status st = check_levels(height, width, levels, rects, out_width);
    if (st) return st;
    if (row0 < 0 || row1 <= row0)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid: bad rows [%d, %d)", row0, row1);
    const size_t row = (size_t)out_width * 3;
    memset(out, 0, sizeof(float) * row * (size_t)(row1 - row0));
    const float *level = store;
    for (int i = 0; i < levels; ++i) {
        const int32_t *q = rects + 4 * i;
        const long first = q[1] > row0 ? q[1] : row0, last = q[3] < row1 - 1 ? q[3] : row1 - 1;
        for (long y = first; y <= last; ++y) {
            float *d = out + (size_t)(y - row0) * row + (size_t)q[0] * 3;
            if (i == 0)
                normalised_row(image, width, y - q[1], mean, d);
            else
                memcpy(d, level + (size_t)(y - q[1]) * level_cols(q) * 3, sizeof(float) * 3 * level_cols(q));
        }
        if (i > 0) level += (size_t)level_rows(q) * level_cols(q) * 3;
    }
    return FX_STATUS_OK;
}

fx_status fx_tiled_pyramid(int height, int width, const uint8_t *image, const float mean[3], int levels,
                           const int32_t *rects, int out_height, int out_width, float *out) {
    fx_status st = check_levels(height, width, levels, rects, out_width);
    if (st) return st;
    for (int i = 0; i < levels; ++i)
        if (rects[4 * i + 3] >= out_height)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid: level %d rectangle does not fit", i);
    float *store = malloc(sizeof(float) * (fx_pyramid_store_floats(levels, rects) + 1));
    if (!store) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "tiled_pyramid: out of memory");
    st = fx_pyramid_levels(height, width, image, mean, levels, rects, store);
    if (!st) st = fx_tiled_pyramid_rows(height, width, image, mean, levels, rects, store, out_width, 0, out_height, out);
    free(store);
    return st;
}

fx_status fx_pyramid_up(int height, int width, const uint8_t *image, uint8_t *out) {
    if (height < 1 || width < 1 || height > (1 << 20) || width > (1 << 20))
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "pyramid_up: bad image size %dx%d", height, width);
    const long snr = height, snc = width, dnr = 2L * height + 1, dnc = 2L * width + 2;
    const double x_scale = (snc - 1) / (double)(dnc - 1);
    row_walk walk;
    row_walk_start(&walk, snr, dnr);
    for (long r = 0; r < dnr; ++r) {
        long top, bottom;
        double tb_frac;
        row_walk_next(&walk, &top, &bottom, &tb_frac);
        const float tbf = (float)tb_frac, itbf = (float)(1 - tb_frac), xs4 = (float)(4 * x_scale);
        const uint8_t *st = image + (size_t)top * snc * 3, *sb = image + (size_t)bottom * snc * 3;
        uint8_t *dr = out + (size_t)r * dnc * 3;
        double x = -4 * x_scale;
        float xv[4] = {(float)x, (float)(x + x_scale), (float)(x + 2 * x_scale), (float)(x + 3 * x_scale)};
        long c = 0;
        for (;; c += 4) {
            int32_t left[4];
            float tlf[4], trf[4], blf[4], brf[4];
            for (int k = 0; k < 4; ++k) {
                xv[k] += xs4;
                left[k] = (int32_t)xv[k];
                const float lr = xv[k] - (float)left[k], ilr = 1 - lr;
                tlf[k] = itbf * ilr, trf[k] = itbf * lr, blf[k] = tbf * ilr, brf[k] = tbf * lr;
            }
            if (left[3] + 1 >= snc || c + 3 >= dnc) break; /* dlib: the first test only */
            for (int k = 0; k < 4; ++k)
                for (int ch = 0; ch < 3; ++ch) {
                    const long lo = left[k] * 3 + ch, hi = (left[k] + 1) * 3 + ch;
                    float v = tlf[k] * (float)st[lo];
                    v = v + trf[k] * (float)st[hi];
                    v = v + blf[k] * (float)sb[lo];
                    v = v + brf[k] * (float)sb[hi];
                    dr[(c + k) * 3 + ch] = (uint8_t)(int32_t)v;
                }
        }
        x = -x_scale + c * x_scale;
        for (; c < dnc; ++c) {
            x += x_scale;
            const long left = (long)floor(x) < snc - 1 ? (long)floor(x) : snc - 1;
            const long right = left + 1 < snc - 1 ? left + 1 : snc - 1;
            const double lr = x - left;
            for (int ch = 0; ch < 3; ++ch) {
                const double v = (1 - tb_frac) * ((1 - lr) * st[left * 3 + ch] + lr * st[right * 3 + ch]) +
                                 tb_frac * ((1 - lr) * sb[left * 3 + ch] + lr * sb[right * 3 + ch]);
                dr[c * 3 + ch] = (uint8_t)v;
            }
        }
    }
    return FX_STATUS_OK;
}
