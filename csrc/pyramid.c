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

/* dlib's resize_image(float gray -> float gray, bilinear), SSE path: one channel
 * of an interleaved image (`step` floats between pixels, `row` between rows). */
static void resize_plane(const float *s, long s_row, long snr, long snc, float *d, long d_row, long dnr, long dnc,
                         long step) {
    const double x_scale = (snc - 1) / (double)(dnc - 1 > 1 ? dnc - 1 : 1);
    const double y_scale = (snr - 1) / (double)(dnr - 1 > 1 ? dnr - 1 : 1);
    double y = -y_scale;
    for (long r = 0; r < dnr; ++r) {
        y += y_scale;
        const long top = (long)floor(y) < snr - 1 ? (long)floor(y) : snr - 1; /* y drifts by rounding only */
        const long bottom = top + 1 < snr - 1 ? top + 1 : snr - 1;
        const double tb_frac = y - top;
        const float tbf = (float)tb_frac, itbf = (float)(1 - tb_frac), xs4 = (float)(4 * x_scale);
        const float *st = s + top * s_row, *sb = s + bottom * s_row;
        float *dr = d + r * d_row;
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
}

fx_status fx_tiled_pyramid(int height, int width, const uint8_t *image, const float mean[3], int levels,
                           const int32_t *rects, int out_height, int out_width, float *out) {
    if (height < 1 || width < 1 || levels < 1 || out_height < 1 || out_width < 1)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid: bad sizes");
    for (int i = 0; i < levels; ++i) {
        const int32_t *q = rects + 4 * i;
        if (q[0] < 0 || q[1] < 0 || q[2] < q[0] || q[3] < q[1] || q[2] >= out_width || q[3] >= out_height ||
            (i == 0 && (q[2] - q[0] + 1 != width || q[3] - q[1] + 1 != height)))
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "tiled_pyramid: level %d rectangle does not fit", i);
    }
    const size_t row = (size_t)out_width * 3;
    memset(out, 0, sizeof(float) * row * (size_t)out_height);
    float *base = out + (size_t)rects[1] * row + (size_t)rects[0] * 3;
    for (int r = 0; r < height; ++r)
        for (int c = 0; c < width; ++c)
            for (int k = 0; k < 3; ++k) {
                const float v = (float)image[((size_t)r * width + c) * 3 + k] - mean[k];
                base[r * row + (size_t)c * 3 + k] = v / 256.0f;
            }
    for (int i = 1; i < levels; ++i) {
        const int32_t *a = rects + 4 * (i - 1), *b = rects + 4 * i;
        const float *s = out + (size_t)a[1] * row + (size_t)a[0] * 3;
        float *d = out + (size_t)b[1] * row + (size_t)b[0] * 3;
        for (int k = 0; k < 3; ++k)
            resize_plane(s + k, (long)row, a[3] - a[1] + 1, a[2] - a[0] + 1, d + k, (long)row, b[3] - b[1] + 1,
                         b[2] - b[0] + 1, 3);
    }
    return FX_STATUS_OK;
}

fx_status fx_pyramid_up(int height, int width, const uint8_t *image, uint8_t *out) {
    if (height < 1 || width < 1 || height > (1 << 20) || width > (1 << 20))
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "pyramid_up: bad image size %dx%d", height, width);
    const long snr = height, snc = width, dnr = 2L * height + 1, dnc = 2L * width + 2;
    const double x_scale = (snc - 1) / (double)(dnc - 1);
    const double y_scale = (snr - 1) / (double)(dnr - 1);
    double y = -y_scale;
    for (long r = 0; r < dnr; ++r) {
        y += y_scale;
        const long top = (long)floor(y) < snr - 1 ? (long)floor(y) : snr - 1; /* y drifts by rounding only */
        const long bottom = top + 1 < snr - 1 ? top + 1 : snr - 1;
        const double tb_frac = y - top;
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
