/*
 * glue.h - shared by the glue files of fxplain._core (and only by them).
 *
 * module.c owns the exception objects and the NumPy C-API table; the other
 * glue files import the table (NO_IMPORT_ARRAY) and reuse the checkers.
 */
#ifndef FX_GLUE_H
#define FX_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL fxplain_core_ARRAY_API
#ifndef FX_GLUE_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "../fxplain.h"

extern PyObject *InvalidInputError, *CoreError;

/* Raise the fxplain exception matching `st`, with the core's message; returns NULL. */
PyObject *raise_status(fx_status st);

/* `obj` as an array of dtype `typenum`, C-contiguous, `ndim` dims, sizes
 * `shape` (entries < 0 free; shape may be NULL), writeable if asked. New
 * reference, or NULL with InvalidInputError set. */
PyArrayObject *checked_array(PyObject *obj, const char *name, int typenum, int ndim, const npy_intp *shape,
                             int writeable);

/* Module-level functions defined in saliency_glue.c (adam_update and pixel_loss: training_glue.c). */
PyObject *py_masks_rise(PyObject *self, PyObject *args);
PyObject *py_masks_patches(PyObject *self, PyObject *args);
PyObject *py_masks_rise_orthogonal(PyObject *self, PyObject *args);
PyObject *py_orthogonal_block_size(PyObject *self, PyObject *args);
PyObject *py_apply_masks(PyObject *self, PyObject *args);
PyObject *py_occlude(PyObject *self, PyObject *args);
PyObject *py_embedding_scores(PyObject *self, PyObject *args);
PyObject *py_correlation_accumulate(PyObject *self, PyObject *args);
PyObject *py_rect_accumulate(PyObject *self, PyObject *args);
PyObject *py_adam_update(PyObject *self, PyObject *args);
PyObject *py_pixel_loss(PyObject *self, PyObject *args);

#define SALIENCY_METHODS \
    {"masks_rise", py_masks_rise, METH_VARARGS, \
     "masks_rise(seed, first, count, h, w, grid, p_keep) -> float32 (count, h, w)."}, \
    {"masks_rise_orthogonal", py_masks_rise_orthogonal, METH_VARARGS, \
     "masks_rise_orthogonal(seed, first, count, h, w, grid) -> float32 (count, h, w), p_keep 1/2."}, \
    {"orthogonal_block_size", py_orthogonal_block_size, METH_VARARGS, \
     "orthogonal_block_size(grid) -> masks per orthogonal block."}, \
    {"masks_patches", py_masks_patches, METH_VARARGS, \
     "masks_patches(seed, first, count, h, w, patch, holes) -> float32 (count, h, w)."}, \
    {"apply_masks", py_apply_masks, METH_VARARGS, \
     "apply_masks(image[h,w,c], fill[h,w,c], masks[n,h,w]) -> float32 (n, h, w, c)."}, \
    {"occlude", py_occlude, METH_VARARGS, \
     "occlude(image[h,w,c], fill[h,w,c], rects int32[n,4]) -> float32 (n, h, w, c)."}, \
    {"embedding_scores", py_embedding_scores, METH_VARARGS, \
     "embedding_scores('neg_squared_euclidean'|'cosine', emb[n,d], ref[d]) -> float64 (n,)."}, \
    {"correlation_accumulate", py_correlation_accumulate, METH_VARARGS, \
     "correlation_accumulate(masks[n,h,w], scores f64[n], sum_m, sum_mm, sum_ms f64[h,w]): in place."}, \
    {"rect_accumulate", py_rect_accumulate, METH_VARARGS, \
     "rect_accumulate(rects int32[n,4], values f64[n], sum f64[h,w], hits f64[h,w]): in place."}, \
    {"adam_update", py_adam_update, METH_VARARGS, \
     "adam_update(param, grad, m, v, lr, beta1, beta2, eps, step): one Adam step on float32 arrays, in place."}, \
    {"pixel_loss", py_pixel_loss, METH_VARARGS, \
     "pixel_loss(out, target, 'l1'|'l2', weight) -> (loss, grad): weight * mean |d| or d^2, and its gradient."},

/* Module-level functions defined in faces_glue.c. */
PyObject *py_shape_predict(PyObject *self, PyObject *args);
PyObject *py_face_chip_details(PyObject *self, PyObject *args);
PyObject *py_face_chip(PyObject *self, PyObject *args);
PyObject *py_tiled_pyramid_layout(PyObject *self, PyObject *args);
PyObject *py_tiled_pyramid(PyObject *self, PyObject *args);
PyObject *py_pyramid_up(PyObject *self, PyObject *args);
PyObject *py_pyramid_levels(PyObject *self, PyObject *args);
PyObject *py_tiled_pyramid_rows(PyObject *self, PyObject *args);
PyObject *py_dlib_integers(PyObject *self, PyObject *args);
PyObject *py_extract_chip(PyObject *self, PyObject *args);

#define FACES_METHODS \
    {"shape_predict", py_shape_predict, METH_VARARGS, \
     "shape_predict(initial_shape, split_index, split_thresh, leaf_values, anchor, deltas, image, box) " \
     "-> float64 (parts, 2)."}, \
    {"face_chip_details", py_face_chip_details, METH_VARARGS, \
     "face_chip_details(landmarks f64[5,2], size, padding) -> ((left, top, right, bottom, angle), rows, cols)."}, \
    {"face_chip", py_face_chip, METH_VARARGS, \
     "face_chip(image u8[h,w,3], landmarks f64[5,2], size, padding) -> (u8 (size, size, 3), f64 (2, 3))."}, \
    {"tiled_pyramid_layout", py_tiled_pyramid_layout, METH_VARARGS, \
     "tiled_pyramid_layout(h, w, padding, outer_padding) -> (int32 (levels, 4) ltrb, out_h, out_w)."}, \
    {"tiled_pyramid", py_tiled_pyramid, METH_VARARGS, \
     "tiled_pyramid(image u8[h,w,3], mean f32[3], rects int32[levels,4], out_h, out_w) -> f32 (out_h, out_w, 3)."}, \
    {"pyramid_levels", py_pyramid_levels, METH_VARARGS, \
     "pyramid_levels(image u8[h,w,3], mean f32[3], rects int32[levels,4]) -> f32 (n,): levels 1.. in turn."}, \
    {"tiled_pyramid_rows", py_tiled_pyramid_rows, METH_VARARGS, \
     "tiled_pyramid_rows(image, mean, rects, store, out_w, row0, row1) -> f32 (row1 - row0, out_w, 3)."}, \
    {"pyramid_up", py_pyramid_up, METH_VARARGS, "pyramid_up(image u8[h,w,3]) -> u8 (2h+1, 2w+2, 3)."}, \
    {"extract_chip", py_extract_chip, METH_VARARGS, \
     "extract_chip(image u8[h,w,3], (l, t, r, b, angle), rows, cols) -> (u8 (rows, cols, 3), f64 (2, 3))."}, \
    {"dlib_integers", py_dlib_integers, METH_VARARGS, \
     "dlib_integers(data, pos, count) -> (int64 (count,) or None, pos): dlib-serialised integers."},

#endif /* FX_GLUE_H */
