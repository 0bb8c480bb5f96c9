/*
 * chip.c - dlib's face alignment: get_face_chip_details() and
 * extract_image_chip() of dlib 19.24 (image_transforms/interpolation.h).
 *
 * The chip is placed by the similarity transform (least squares, Umeyama)
 * from dlib's 5-point template, shrunk by `padding`, to the landmarks. It is
 * sampled bilinearly (channel values truncated to integers, black outside the
 * image). When the chip is much smaller than its footprint in the photo, dlib
 * first builds a pyramid_down<2> image pyramid (5x5 binomial filter, keep
 * every other pixel, integer arithmetic) of the region around the face and
 * samples the level whose size just exceeds the chip's; this file does the
 * same, with dlib's coordinate conventions for each level. The NumPy twin is
 * fxplain/faces/reference.py.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fx_internal.h"

/* dlib's 5-point template (get_face_chip_details), in part order. */
static const double TEMPLATE5[5][2] = {{0.8595674595992, 0.2134981538014}, {0.6460604764104, 0.2289674387677},
                                       {0.1205750620789, 0.2137274526848}, {0.3340850613712, 0.2290642403242},
                                       {0.4901123135679, 0.6277975316475}};

typedef struct {
    double l, t, r, b; /* dlib drectangle; empty if t > b or l > r */
} drect;

static double drect_area(drect d) { return (d.t > d.b || d.l > d.r) ? 0.0 : (d.r - d.l + 1) * (d.b - d.t + 1); }

/* pyramid_down<2>::rect_down: each corner p -> p/2 - (1.25, 0.75). */
static drect rect_down(drect d) { return (drect){d.l / 2.0 - 1.25, d.t / 2.0 - 0.75, d.r / 2.0 - 1.25, d.b / 2.0 - 0.75}; }

/* rotate_point(center, p, angle) */
static void rotate(double cx, double cy, double px, double py, double cs, double sn, double *x, double *y) {
    const double dx = px - cx, dy = py - cy;
    *x = cs * dx - sn * dy + cx;
    *y = sn * dx + cs * dy + cy;
}

fx_status fx_face_chip_details(const double landmarks[10], int size, double padding, fx_chip_details *out) {
    if (!landmarks || !out || size < 2 || !(padding >= 0) || !isfinite(padding))
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "face_chip_details: need size >= 2 and padding >= 0, got %d, %g",
                       size, padding);
    for (int i = 0; i < 10; ++i)
        if (!isfinite(landmarks[i]))
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "face_chip_details: landmarks must be finite");
    /* find_similarity_transform(template * size -> landmarks), Umeyama's closed form in 2-D */
    double from[5][2], mfx = 0, mfy = 0, mtx = 0, mty = 0;
    for (int i = 0; i < 5; ++i) {
        for (int k = 0; k < 2; ++k) from[i][k] = (padding + TEMPLATE5[i][k]) / (2 * padding + 1) * size;
        mfx += from[i][0], mfy += from[i][1], mtx += landmarks[2 * i], mty += landmarks[2 * i + 1];
    }
    mfx /= 5, mfy /= 5, mtx /= 5, mty /= 5;
    double sigma = 0, c00 = 0, c01 = 0, c10 = 0, c11 = 0;
    for (int i = 0; i < 5; ++i) {
        const double fx = from[i][0] - mfx, fy = from[i][1] - mfy;
        const double tx = landmarks[2 * i] - mtx, ty = landmarks[2 * i + 1] - mty;
        sigma += fx * fx + fy * fy;
        c00 += tx * fx, c01 += tx * fy, c10 += ty * fx, c11 += ty * fy;
    }
    sigma /= 5, c00 /= 5, c01 /= 5, c10 /= 5, c11 /= 5;
    const double a = (c00 + c11) / sigma, b = (c10 - c01) / sigma; /* c*R = [[a, -b], [b, a]] */
    const double t0 = mtx - (a * mfx - b * mfy), t1 = mty - (b * mfx + a * mfy);
    out->angle = atan2(b, a);
    const double scale = sqrt(a * a + b * b);
    /* centered_drect(tform(dims / 2), cols * scale, rows * scale) */
    const double hx = size / 2.0, hy = size / 2.0;
    const double cx = a * hx - b * hy + t0, cy = b * hx + a * hy + t1;
    const double w = size * scale - 1, h = size * scale - 1;
    out->left = cx - w / 2, out->top = cy - h / 2, out->right = cx + w / 2, out->bottom = cy + h / 2;
    out->rows = out->cols = size;
    return FX_STATUS_OK;
}

/* One pyramid_down<2> step of an RGB image (dlib's rgb overload); *out is
 * malloc'ed, NULL with 0x0 size when the input is too small (<= 8 rows or cols). */
static fx_status pyramid_down(int h, int w, size_t stride, const uint8_t *in, int *oh, int *ow, uint8_t **out) {
    *out = NULL;
    *oh = *ow = 0;
    if (h <= 8 || w <= 8) return FX_STATUS_OK;
    const int th = h, tw = (w - 3) / 2, dh = (h - 3) / 2;
    uint16_t *tmp = malloc(sizeof(uint16_t) * th * tw * 3); /* [th][tw][3] row-filtered */
    uint8_t *down = malloc((size_t)dh * tw * 3);            /* [dh][tw][3] */
    if (!tmp || !down) {
        free(tmp);
        free(down);
        return fx_fail(FX_STATUS_OUT_OF_MEMORY, "extract_image_chip: out of memory for the image pyramid");
    }
    for (int r = 0; r < th; ++r)
        for (int c = 0; c < tw; ++c)
            for (int k = 0; k < 3; ++k) {
                const uint8_t *p = in + r * stride + (size_t)(2 * c) * 3 + k;
                tmp[((size_t)r * tw + c) * 3 + k] = (uint16_t)(p[0] + 4 * p[3] + 6 * p[6] + 4 * p[9] + p[12]);
            }
    for (int r = 2, dr = 0; r < th - 2; r += 2, ++dr)
        for (int c = 0; c < tw; ++c)
            for (int k = 0; k < 3; ++k) {
                const size_t at = ((size_t)r * tw + c) * 3 + k, row = (size_t)tw * 3;
                const unsigned v = tmp[at - 2 * row] + 4u * tmp[at - row] + 6u * tmp[at] + 4u * tmp[at + row] +
                                   tmp[at + 2 * row];
                down[((size_t)dr * tw + c) * 3 + k] = (uint8_t)((uint16_t)v / 256);
            }
    free(tmp);
    *out = down;
    *oh = dh;
    *ow = tw;
    return FX_STATUS_OK;
}

/* transform_image with interpolate_bilinear and a black background. */
static void warp_bilinear(int h, int w, size_t stride, const uint8_t *src, int rows, int cols, const double tf[6],
                          uint8_t *chip) {
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            uint8_t *o = chip + ((size_t)r * cols + c) * 3;
            const double x = tf[0] * c + tf[1] * r + tf[2], y = tf[3] * c + tf[4] * r + tf[5];
            const double fl = floor(x), ft = floor(y);
            if (!(fl >= 0 && ft >= 0 && fl + 1 < w && ft + 1 < h)) {
                o[0] = o[1] = o[2] = 0;
                continue;
            }
            const long left = (long)fl, top = (long)ft;
            const double lr = x - left, tb = y - top;
            const uint8_t *tl = src + top * stride + (size_t)left * 3, *bl = tl + stride;
            for (int k = 0; k < 3; ++k) {
                const double v = (1 - tb) * ((1 - lr) * tl[k] + lr * tl[3 + k]) + tb * ((1 - lr) * bl[k] + lr * bl[3 + k]);
                o[k] = (uint8_t)v;
            }
        }
}

/* The affine map sending chip (0,0), (cols-1,0), (0,rows-1) to the corners of
 * `d` rotated by `angle` about its centre; tf = {m00, m01, b0, m10, m11, b1}. */
static void corner_map(drect d, double angle, int rows, int cols, double tf[6]) {
    const double cx = (d.l + d.r) / 2.0, cy = (d.t + d.b) / 2.0, cs = cos(angle), sn = sin(angle);
    double x0, y0, x1, y1, x2, y2;
    rotate(cx, cy, d.l, d.t, cs, sn, &x0, &y0);
    rotate(cx, cy, d.r, d.t, cs, sn, &x1, &y1);
    rotate(cx, cy, d.l, d.b, cs, sn, &x2, &y2);
    tf[0] = (x1 - x0) / (cols - 1), tf[1] = (x2 - x0) / (rows - 1), tf[2] = x0;
    tf[3] = (y1 - y0) / (cols - 1), tf[4] = (y2 - y0) / (rows - 1), tf[5] = y0;
}

static long round_half_up(double v) { return (long)floor(v + 0.5); }

fx_status fx_extract_image_chip(int height, int width, const uint8_t *image, const fx_chip_details *details,
                                uint8_t *chip, double transform[6]) {
    if (height < 1 || width < 1 || !image || !details || !chip || details->rows < 2 || details->cols < 2 ||
        !isfinite(details->left) || !isfinite(details->top) || !isfinite(details->right) ||
        !isfinite(details->bottom) || !isfinite(details->angle))
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "extract_image_chip: bad image size %dx%d or chip details",
                       height, width);
    const int rows = details->rows, cols = details->cols;
    const drect rect = {details->left, details->top, details->right, details->bottom};
    if (transform) corner_map(rect, details->angle, rows, cols, transform);
    const size_t stride = (size_t)width * 3;
    const double chip_area = (double)rows * cols;

    /* dlib's fast path: no rotation, no scaling -> a plain copy of the (rounded) rectangle */
    if (details->angle == 0 && rows == rect.b - rect.t + 1 && cols == rect.r - rect.l + 1) {
        const long l = round_half_up(rect.l), t = round_half_up(rect.t);
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < cols; ++c) {
                uint8_t *o = chip + ((size_t)r * cols + c) * 3;
                const long y = t + r, x = l + c;
                if (y >= 0 && x >= 0 && y < height && x < width) memcpy(o, image + y * stride + x * 3, 3);
                else o[0] = o[1] = o[2] = 0;
            }
        return FX_STATUS_OK;
    }

    /* pyramid depth, and the region of the photo it needs (bounding box of the rotated rect, grown) */
    int depth = 0;
    double grow = 2;
    for (drect d = rect_down(rect); drect_area(d) > chip_area; d = rect_down(d)) {
        ++depth;
        grow = grow * 2 + 2;
    }
    const double cx = (rect.l + rect.r) / 2.0, cy = (rect.t + rect.b) / 2.0;
    const double cs = cos(details->angle), sn = sin(details->angle);
    const double corners[4][2] = {{rect.l, rect.t}, {rect.r, rect.t}, {rect.l, rect.b}, {rect.r, rect.b}};
    drect box = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    for (int i = 0; i < 4; ++i) {
        double x, y;
        rotate(cx, cy, corners[i][0], corners[i][1], cs, sn, &x, &y);
        box.l = fmin(box.l, x), box.t = fmin(box.t, y), box.r = fmax(box.r, x), box.b = fmax(box.b, y);
    }
    box = (drect){fmax(box.l - grow, 0), fmax(box.t - grow, 0), fmin(box.r + grow, width - 1),
                  fmin(box.b + grow, height - 1)};
    const long bl = round_half_up(box.l), bt = round_half_up(box.t), br = round_half_up(box.r),
               bb = round_half_up(box.b);
    if (bl > br || bt > bb) { /* the face lies outside the photo: dlib samples an empty image */
        memset(chip, 0, (size_t)rows * cols * 3);
        return FX_STATUS_OK;
    }

    /* the pyramid level to sample, and the chip rectangle in its coordinates */
    int level = -1;
    drect d = {rect.l - bl, rect.t - bt, rect.r - bl, rect.b - bt};
    while (drect_area(rect_down(d)) > chip_area) {
        ++level;
        d = rect_down(d);
    }
    int h = (int)(bb - bt + 1), w = (int)(br - bl + 1);
    size_t src_stride = stride;
    const uint8_t *src = image + bt * stride + bl * 3;
    uint8_t *level_img = NULL;
    for (int i = 0; i <= level; ++i) {
        uint8_t *next;
        int nh, nw;
        fx_status st = pyramid_down(h, w, src_stride, src, &nh, &nw, &next);
        free(level_img);
        if (st) return st;
        level_img = next;
        src = next;
        h = nh, w = nw;
        src_stride = (size_t)nw * 3;
        if (!next) break; /* too small to shrink further: an empty image */
    }
    double tf[6];
    corner_map(d, details->angle, rows, cols, tf);
    if (src) warp_bilinear(h, w, src_stride, src, rows, cols, tf, chip);
    else memset(chip, 0, (size_t)rows * cols * 3);
    free(level_img);
    return FX_STATUS_OK;
}
