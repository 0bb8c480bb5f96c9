/*
 * faces_glue.c - Python wrappers of the face kernels (shape_predictor.c,
 * chip.c, pyramid.c, dlib_serial.c): argument checks, result allocation, GIL release.
 */
#include "glue.h"

#include <math.h>

/* uint8 (h, w) or (h, w, channels in `allowed`) image, C-contiguous. */
static PyArrayObject *uint8_image(PyObject *obj, int gray_ok, int *h, int *w, int *c) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(InvalidInputError, "image must be a numpy array, got %s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    const int ndim = PyArray_NDIM((PyArrayObject *)obj);
    if (!(ndim == 3 || (gray_ok && ndim == 2))) {
        PyErr_Format(InvalidInputError, "image must have shape (h, w, 3)%s, got %d dimensions",
                     gray_ok ? " or (h, w)" : "", ndim);
        return NULL;
    }
    npy_intp shape[3] = {-1, -1, 3};
    PyArrayObject *img = checked_array(obj, "image", NPY_UINT8, ndim, shape, 0);
    if (!img) return NULL;
    if (PyArray_DIM(img, 0) < 1 || PyArray_DIM(img, 1) < 1 || PyArray_DIM(img, 0) > INT32_MAX / 4 ||
        PyArray_DIM(img, 1) > INT32_MAX / 4) {
        PyErr_Format(InvalidInputError, "image must have between 1 and %d rows and columns", INT32_MAX / 4);
        Py_DECREF(img);
        return NULL;
    }
    *h = (int)PyArray_DIM(img, 0);
    *w = (int)PyArray_DIM(img, 1);
    *c = ndim == 3 ? 3 : 1;
    return img;
}

PyObject *py_shape_predict(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objs[8], *out = NULL;
    PyArrayObject *arr[8] = {NULL};
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5], &objs[6],
                          &objs[7]))
        return NULL;
    int h, w, c;
    if (!(arr[0] = checked_array(objs[0], "initial_shape", NPY_FLOAT32, 2, (npy_intp[]){-1, 2}, 0))) goto done;
    const npy_intp P = PyArray_DIM(arr[0], 0);
    if (!(arr[1] = checked_array(objs[1], "split_index", NPY_INT32, 4, (npy_intp[]){-1, -1, -1, 2}, 0))) goto done;
    const npy_intp C = PyArray_DIM(arr[1], 0), T = PyArray_DIM(arr[1], 1), S = PyArray_DIM(arr[1], 2);
    int depth = 0;
    while (depth < 20 && ((npy_intp)1 << depth) - 1 < S) ++depth;
    if (P < 1 || P > 100000 || ((npy_intp)1 << depth) - 1 != S || C > INT32_MAX || T > INT32_MAX) {
        PyErr_Format(InvalidInputError, "shape predictor: %zd parts and %zd splits per tree (need 2^depth - 1)",
                     (Py_ssize_t)P, (Py_ssize_t)S);
        goto done;
    }
    if (!(arr[2] = checked_array(objs[2], "split_thresh", NPY_FLOAT32, 3, (npy_intp[]){C, T, S}, 0))) goto done;
    if (!(arr[3] = checked_array(objs[3], "leaf_values", NPY_FLOAT32, 5, (npy_intp[]){C, T, S + 1, P, 2}, 0)))
        goto done;
    if (!(arr[4] = checked_array(objs[4], "anchor", NPY_INT32, 2, (npy_intp[]){C, -1}, 0))) goto done;
    const npy_intp F = PyArray_DIM(arr[4], 1);
    if (F < 1 || F > INT32_MAX) {
        PyErr_SetString(InvalidInputError, "shape predictor: need at least one feature pixel per cascade");
        goto done;
    }
    if (!(arr[5] = checked_array(objs[5], "deltas", NPY_FLOAT32, 3, (npy_intp[]){C, F, 2}, 0))) goto done;
    if (!(arr[6] = uint8_image(objs[6], 1, &h, &w, &c))) goto done;
    if (!(arr[7] = checked_array(objs[7], "box", NPY_INT32, 1, (npy_intp[]){4}, 0))) goto done;
    const fx_shape_predictor sp = {(int)P, (int)C, (int)T, depth, (int)F, PyArray_DATA(arr[0]), PyArray_DATA(arr[1]),
                                   PyArray_DATA(arr[2]), PyArray_DATA(arr[3]), PyArray_DATA(arr[4]),
                                   PyArray_DATA(arr[5])};
    npy_intp out_shape[2] = {P, 2};
    out = PyArray_SimpleNew(2, out_shape, NPY_FLOAT64);
    if (!out) goto done;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_shape_predict(&sp, h, w, c, PyArray_DATA(arr[6]), PyArray_DATA(arr[7]),
                          PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        raise_status(st);
    }
done:
    for (int i = 0; i < 8; ++i) Py_XDECREF(arr[i]);
    return out;
}

static int chip_details_args(PyObject *lm_obj, int size, double padding, fx_chip_details *details) {
    PyArrayObject *lm = checked_array(lm_obj, "landmarks", NPY_FLOAT64, 2, (npy_intp[]){5, 2}, 0);
    if (!lm) return 0;
    fx_status st = fx_face_chip_details(PyArray_DATA(lm), size, padding, details);
    Py_DECREF(lm);
    if (st) {
        raise_status(st);
        return 0;
    }
    return 1;
}

PyObject *py_face_chip_details(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *lm_obj;
    int size;
    double padding;
    if (!PyArg_ParseTuple(args, "Oid", &lm_obj, &size, &padding)) return NULL;
    fx_chip_details d;
    if (!chip_details_args(lm_obj, size, padding, &d)) return NULL;
    return Py_BuildValue("(ddddd)ii", d.left, d.top, d.right, d.bottom, d.angle, d.rows, d.cols);
}

/* The chip of `details` from an RGB image object, and its chip -> photo transform: (u8 (rows, cols, 3), f64 (2, 3)). */
static PyObject *chip_and_transform(PyObject *img_obj, const fx_chip_details *d) {
    int h, w, c;
    PyObject *chip = NULL, *tf = NULL;
    PyArrayObject *img = uint8_image(img_obj, 0, &h, &w, &c);
    if (!img) return NULL;
    npy_intp chip_shape[3] = {d->rows, d->cols, 3}, tf_shape[2] = {2, 3};
    chip = PyArray_SimpleNew(3, chip_shape, NPY_UINT8);
    tf = PyArray_SimpleNew(2, tf_shape, NPY_FLOAT64);
    if (!chip || !tf) goto fail;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_extract_image_chip(h, w, PyArray_DATA(img), d, PyArray_DATA((PyArrayObject *)chip),
                               PyArray_DATA((PyArrayObject *)tf));
    Py_END_ALLOW_THREADS
    if (st) {
        raise_status(st);
        goto fail;
    }
    Py_DECREF(img);
    return Py_BuildValue("NN", chip, tf);
fail:
    Py_DECREF(img);
    Py_XDECREF(chip);
    Py_XDECREF(tf);
    return NULL;
}

PyObject *py_face_chip(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *img_obj, *lm_obj;
    int size;
    double padding;
    if (!PyArg_ParseTuple(args, "OOid", &img_obj, &lm_obj, &size, &padding)) return NULL;
    if (size < 2 || size > 8192) {
        PyErr_Format(InvalidInputError, "size must be between 2 and 8192, got %d", size);
        return NULL;
    }
    fx_chip_details d;
    if (!chip_details_args(lm_obj, size, padding, &d)) return NULL;
    return chip_and_transform(img_obj, &d);
}

/* extract_chip(image u8[h,w,3], (left, top, right, bottom, angle), rows, cols) -> (u8 (rows, cols, 3), f64 (2, 3)):
 * dlib's extract_image_chip for any chip_details (templates other than dlib's own, e.g. ArcFace's). */
PyObject *py_extract_chip(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *img_obj;
    fx_chip_details d;
    if (!PyArg_ParseTuple(args, "O(ddddd)ii", &img_obj, &d.left, &d.top, &d.right, &d.bottom, &d.angle, &d.rows,
                          &d.cols))
        return NULL;
    if (d.rows < 2 || d.rows > 8192 || d.cols < 2 || d.cols > 8192 || !isfinite(d.left) || !isfinite(d.top) ||
        !isfinite(d.right) || !isfinite(d.bottom) || !isfinite(d.angle) || !(d.right > d.left) ||
        !(d.bottom > d.top) || fabs(d.left) > 1e7 || fabs(d.top) > 1e7 || fabs(d.right) > 1e7 ||
        fabs(d.bottom) > 1e7) {
        PyErr_SetString(InvalidInputError, "extract_chip: chip of 2 to 8192 pixels a side and a finite, "
                                           "non-empty rectangle within 1e7 pixels");
        return NULL;
    }
    return chip_and_transform(img_obj, &d);
}

/* tiled_pyramid_layout(height, width, padding, outer_padding) -> (int32 (levels, 4), out_height, out_width) */
PyObject *py_tiled_pyramid_layout(PyObject *self, PyObject *args) {
    (void)self;
    int h, w, padding, outer, levels, oh, ow;
    int32_t rects[4 * 128];
    if (!PyArg_ParseTuple(args, "iiii", &h, &w, &padding, &outer)) return NULL;
    fx_status st = fx_tiled_pyramid_layout(h, w, padding, outer, 128, &levels, rects, &oh, &ow);
    if (st) return raise_status(st);
    npy_intp shape[2] = {levels, 4};
    PyObject *out = PyArray_SimpleNew(2, shape, NPY_INT32);
    if (!out) return NULL;
    memcpy(PyArray_DATA((PyArrayObject *)out), rects, sizeof(int32_t) * 4 * (size_t)levels);
    return Py_BuildValue("Nii", out, oh, ow);
}

/* The arrays every tiled-pyramid call takes: image u8[h,w,3], mean f32[3], rects int32[levels,4]. */
typedef struct {
    PyArrayObject *image, *mean, *rects;
    int h, w, levels;
} pyramid_args;

static int pyramid_args_parse(PyObject *img_obj, PyObject *mean_obj, PyObject *rects_obj, pyramid_args *a) {
    int c;
    a->mean = a->rects = NULL;
    if (!(a->image = uint8_image(img_obj, 0, &a->h, &a->w, &c))) return 0;
    if (!(a->mean = checked_array(mean_obj, "mean", NPY_FLOAT32, 1, (npy_intp[]){3}, 0))) return 0;
    if (!(a->rects = checked_array(rects_obj, "rects", NPY_INT32, 2, (npy_intp[]){-1, 4}, 0))) return 0;
    const npy_intp levels = PyArray_DIM(a->rects, 0);
    if (levels < 1 || levels > 128) {
        PyErr_SetString(InvalidInputError, "tiled_pyramid: need 1 to 128 levels");
        return 0;
    }
    a->levels = (int)levels;
    return 1;
}

static void pyramid_args_release(pyramid_args *a) {
    Py_XDECREF(a->image);
    Py_XDECREF(a->mean);
    Py_XDECREF(a->rects);
}

/* tiled_pyramid(image u8[h,w,3], mean f32[3], rects int32[levels,4], out_height, out_width) -> f32 (oh, ow, 3) */
PyObject *py_tiled_pyramid(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *img_obj, *mean_obj, *rects_obj, *out = NULL;
    int oh, ow;
    pyramid_args a;
    if (!PyArg_ParseTuple(args, "OOOii", &img_obj, &mean_obj, &rects_obj, &oh, &ow)) return NULL;
    if (oh < 1 || ow < 1 || (double)oh * ow > (double)(1 << 28)) {
        PyErr_Format(InvalidInputError, "tiled_pyramid: bad output size %dx%d", oh, ow);
        return NULL;
    }
    if (!pyramid_args_parse(img_obj, mean_obj, rects_obj, &a)) goto done;
    npy_intp shape[3] = {oh, ow, 3};
    out = PyArray_SimpleNew(3, shape, NPY_FLOAT32);
    if (!out) goto done;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_tiled_pyramid(a.h, a.w, PyArray_DATA(a.image), PyArray_DATA(a.mean), a.levels, PyArray_DATA(a.rects),
                          oh, ow, PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        raise_status(st);
    }
done:
    pyramid_args_release(&a);
    return out;
}

/* The most floats a level store may hold (4 GiB); callers bound photos far below. */
#define MAX_STORE_FLOATS ((size_t)1 << 30)

/* pyramid_levels(image u8[h,w,3], mean f32[3], rects int32[levels,4]) -> f32 (n,): levels 1.. one after another */
PyObject *py_pyramid_levels(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *img_obj, *mean_obj, *rects_obj, *out = NULL;
    pyramid_args a;
    if (!PyArg_ParseTuple(args, "OOO", &img_obj, &mean_obj, &rects_obj)) return NULL;
    if (!pyramid_args_parse(img_obj, mean_obj, rects_obj, &a)) goto done;
    const size_t n = fx_pyramid_store_floats(a.levels, PyArray_DATA(a.rects));
    if (n > MAX_STORE_FLOATS) {
        PyErr_Format(InvalidInputError, "pyramid_levels: %zu values is too large", n);
        goto done;
    }
    npy_intp shape[1] = {(npy_intp)n};
    out = PyArray_SimpleNew(1, shape, NPY_FLOAT32);
    if (!out) goto done;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_pyramid_levels(a.h, a.w, PyArray_DATA(a.image), PyArray_DATA(a.mean), a.levels, PyArray_DATA(a.rects),
                           PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        raise_status(st);
    }
done:
    pyramid_args_release(&a);
    return out;
}

/* tiled_pyramid_rows(image, mean, rects, store f32[n], out_width, row0, row1) -> f32 (row1 - row0, out_width, 3) */
PyObject *py_tiled_pyramid_rows(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *img_obj, *mean_obj, *rects_obj, *store_obj, *out = NULL;
    PyArrayObject *store = NULL;
    int ow, row0, row1;
    pyramid_args a;
    if (!PyArg_ParseTuple(args, "OOOOiii", &img_obj, &mean_obj, &rects_obj, &store_obj, &ow, &row0, &row1))
        return NULL;
    if (ow < 1 || row0 < 0 || row1 <= row0 || (double)(row1 - row0) * ow > (double)(1 << 28)) {
        PyErr_Format(InvalidInputError, "tiled_pyramid_rows: bad band [%d, %d) of width %d", row0, row1, ow);
        return NULL;
    }
    if (!pyramid_args_parse(img_obj, mean_obj, rects_obj, &a)) goto done;
    if (!(store = checked_array(store_obj, "store", NPY_FLOAT32, 1, (npy_intp[]){-1}, 0))) goto done;
    if ((size_t)PyArray_DIM(store, 0) != fx_pyramid_store_floats(a.levels, PyArray_DATA(a.rects))) {
        PyErr_SetString(InvalidInputError, "tiled_pyramid_rows: store does not hold these levels");
        goto done;
    }
    npy_intp shape[3] = {row1 - row0, ow, 3};
    out = PyArray_SimpleNew(3, shape, NPY_FLOAT32);
    if (!out) goto done;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_tiled_pyramid_rows(a.h, a.w, PyArray_DATA(a.image), PyArray_DATA(a.mean), a.levels,
                               PyArray_DATA(a.rects), PyArray_DATA(store), ow, row0, row1,
                               PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        raise_status(st);
    }
done:
    pyramid_args_release(&a);
    Py_XDECREF(store);
    return out;
}

/* pyramid_up(image u8[h,w,3]) -> u8 (2h+1, 2w+2, 3) */
PyObject *py_pyramid_up(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *img_obj;
    int h, w, c;
    if (!PyArg_ParseTuple(args, "O", &img_obj)) return NULL;
    PyArrayObject *img = uint8_image(img_obj, 0, &h, &w, &c);
    if (!img) return NULL;
    if (h > (1 << 20) || w > (1 << 20)) {
        PyErr_Format(InvalidInputError, "pyramid_up: image of %dx%d is too large", h, w);
        Py_DECREF(img);
        return NULL;
    }
    npy_intp shape[3] = {2 * (npy_intp)h + 1, 2 * (npy_intp)w + 2, 3};
    PyObject *out = PyArray_SimpleNew(3, shape, NPY_UINT8);
    if (out) {
        fx_status st;
        Py_BEGIN_ALLOW_THREADS
        st = fx_pyramid_up(h, w, PyArray_DATA(img), PyArray_DATA((PyArrayObject *)out));
        Py_END_ALLOW_THREADS
        if (st) {
            Py_CLEAR(out);
            raise_status(st);
        }
    }
    Py_DECREF(img);
    return out;
}

/* dlib_integers(data bytes, pos, count) -> (int64 (count,) or None, pos): None and the position of the first
 * malformed integer if there is one (the caller reads it again to say why). */
PyObject *py_dlib_integers(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t pos, count;
    if (!PyArg_ParseTuple(args, "y*nn", &view, &pos, &count)) return NULL;
    PyObject *out = NULL;
    if (pos < 0 || count < 0 || pos > view.len || count > view.len - pos) {
        /* each integer takes at least one byte */
        PyErr_Format(InvalidInputError, "dlib_integers: %zd integers cannot start at byte %zd of %zd", count, pos,
                     view.len);
        goto done;
    }
    npy_intp shape[1] = {count};
    out = PyArray_SimpleNew(1, shape, NPY_INT64);
    if (!out) goto done;
    size_t p = (size_t)pos;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_dlib_integers(view.buf, (size_t)view.len, &p, (size_t)count, PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out);
        out = Py_BuildValue("On", Py_None, (Py_ssize_t)p);
    } else {
        PyObject *array = out;
        out = Py_BuildValue("Nn", array, (Py_ssize_t)p);
    }
done:
    PyBuffer_Release(&view);
    return out;
}
