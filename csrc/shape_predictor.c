/*
 * shape_predictor.c - dlib's face-landmark cascade (Kazemi & Sullivan's
 * ensemble of regression trees), as dlib 19.24's shape_predictor runs it.
 *
 * A shape is P points in the box's normalised frame ((0,0) = top-left corner,
 * (1,1) = bottom-right corner of dlib's inclusive rectangle). Starting from the
 * mean shape, each cascade level looks up F pixel intensities at points fixed
 * relative to the current shape (an anchor landmark plus an offset turned and
 * scaled by the similarity transform from the mean shape to the current one),
 * walks its trees on differences of pairs of those intensities, and adds each
 * tree's leaf vector to the shape. Float32 arithmetic where dlib uses float,
 * float64 where it uses double, so the pixels looked up are the ones dlib
 * looks up. The NumPy twin is fxplain/faces/reference.py.
 */
#include <math.h>
#include <stdlib.h>

#include "fx_internal.h"

/* dlib's find_similarity_transform (Umeyama) for 2-D points, closed form:
 * the best rotation+scale is [[a, -b], [b, a]] with (a, b) from the cross
 * covariance; translation not needed here. m = {m00, m01, m10, m11}. */
static void similarity_2x2(int n, const float *from, const float *to, double m[4]) {
    double mfx = 0, mfy = 0, mtx = 0, mty = 0;
    for (int i = 0; i < n; ++i) {
        mfx += from[2 * i];
        mfy += from[2 * i + 1];
        mtx += to[2 * i];
        mty += to[2 * i + 1];
    }
    mfx /= n, mfy /= n, mtx /= n, mty /= n;
    double sigma = 0, c00 = 0, c01 = 0, c10 = 0, c11 = 0;
    for (int i = 0; i < n; ++i) {
        const double fx = from[2 * i] - mfx, fy = from[2 * i + 1] - mfy;
        const double tx = to[2 * i] - mtx, ty = to[2 * i + 1] - mty;
        sigma += fx * fx + fy * fy;
        c00 += tx * fx, c01 += tx * fy, c10 += ty * fx, c11 += ty * fy;
    }
    sigma /= n, c00 /= n, c01 /= n, c10 /= n, c11 /= n;
    double a = 1, b = 0;
    if (sigma != 0) {
        a = (c00 + c11) / sigma;
        b = (c10 - c01) / sigma;
    }
    m[0] = a, m[1] = -b, m[2] = b, m[3] = a;
}

fx_status fx_shape_predictor_check(const fx_shape_predictor *sp) {
    if (!sp || sp->parts < 1 || sp->cascades < 0 || sp->trees < 0 || sp->depth < 0 || sp->depth > 20 ||
        sp->features < 1 || !sp->initial_shape || !sp->split_index || !sp->split_thresh || !sp->leaf_values ||
        !sp->anchor || !sp->deltas)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "shape predictor: bad sizes or NULL arrays");
    const size_t splits = ((size_t)1 << sp->depth) - 1;
    const size_t n_idx = (size_t)sp->cascades * sp->trees * splits * 2;
    for (size_t i = 0; i < n_idx; ++i)
        if (sp->split_index[i] < 0 || sp->split_index[i] >= sp->features)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "shape predictor: split feature index %d out of range [0, %d)",
                           (int)sp->split_index[i], sp->features);
    const size_t n_anchor = (size_t)sp->cascades * sp->features;
    for (size_t i = 0; i < n_anchor; ++i)
        if (sp->anchor[i] < 0 || sp->anchor[i] >= sp->parts)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "shape predictor: anchor index %d out of range [0, %d)",
                           (int)sp->anchor[i], sp->parts);
    return FX_STATUS_OK;
}

fx_status fx_shape_predict(const fx_shape_predictor *sp, int height, int width, int channels, const uint8_t *image,
                           const int32_t box[4], double *out) {
    fx_status st = fx_shape_predictor_check(sp);
    if (st) return st;
    if (height < 1 || width < 1 || (channels != 1 && channels != 3) || !image || !box || !out)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "shape_predict: bad image (%dx%dx%d) or NULL buffer", height, width,
                       channels);
    const int P = sp->parts, F = sp->features, T = sp->trees;
    const int S = (1 << sp->depth) - 1;
    float *shape = malloc(sizeof(float) * 2 * P);    /* [P][2] current shape */
    float *values = malloc(sizeof(float) * F);       /* [F] feature pixel intensities */
    if (!shape || !values) {
        st = fx_fail(FX_STATUS_OUT_OF_MEMORY, "shape_predict: out of memory");
        goto cleanup;
    }
    for (int i = 0; i < 2 * P; ++i) shape[i] = sp->initial_shape[i];
    /* dlib's unnormalizing_tform(rect): (0,0) -> top-left corner, (1,1) -> bottom-right */
    const double x0 = box[0], y0 = box[1], sx = (double)box[2] - box[0], sy = (double)box[3] - box[1];
    for (int level = 0; level < sp->cascades; ++level) {
        double m[4];
        similarity_2x2(P, sp->initial_shape, shape, m);
        const float m00 = (float)m[0], m01 = (float)m[1], m10 = (float)m[2], m11 = (float)m[3];
        const int32_t *anchor = sp->anchor + (size_t)level * F;
        const float *delta = sp->deltas + (size_t)level * F * 2;
        for (int j = 0; j < F; ++j) {
            const float dx = delta[2 * j], dy = delta[2 * j + 1];
            const float u = m00 * dx + m01 * dy + shape[2 * anchor[j]];
            const float v = m10 * dx + m11 * dy + shape[2 * anchor[j] + 1];
            const double px = floor(x0 + sx * (double)u + 0.5), py = floor(y0 + sy * (double)v + 0.5);
            float value = 0;
            if (px >= 0 && py >= 0 && px < width && py < height) {
                const uint8_t *pix = image + ((size_t)py * width + (size_t)px) * channels;
                value = channels == 1 ? pix[0] : (float)(((unsigned)pix[0] + pix[1] + pix[2]) / 3);
            }
            values[j] = value;
        }
        for (int t = 0; t < T; ++t) {
            const size_t tree = (size_t)level * T + t;
            const int32_t *idx = sp->split_index + tree * S * 2;
            const float *thresh = sp->split_thresh + tree * S;
            int node = 0;
            while (node < S)
                node = values[idx[2 * node]] - values[idx[2 * node + 1]] > thresh[node] ? 2 * node + 1 : 2 * node + 2;
            const float *leaf = sp->leaf_values + (tree * (S + 1) + (node - S)) * 2 * P;
            for (int i = 0; i < 2 * P; ++i) shape[i] += leaf[i];
        }
    }
    for (int i = 0; i < P; ++i) {
        out[2 * i] = x0 + sx * (double)shape[2 * i];
        out[2 * i + 1] = y0 + sy * (double)shape[2 * i + 1];
    }
cleanup:
    free(shape);
    free(values);
    return st;
}
