/*
 * saliency_glue.c - Python wrappers of the saliency kernels (masks.c,
 * saliency.c): argument checks, result allocation, GIL release.
 */
#include "glue.h"

/* Shapes are checked against each other here, because the kernels trust them. */

static PyObject *new_float_array(int ndim, const npy_intp *shape) {
    return PyArray_SimpleNew(ndim, (npy_intp *)shape, NPY_FLOAT32);
}

static int positive_size(long long count, int h, int w) {
    if (count < 0 || count > INT32_MAX || h < 1 || w < 1) {
        PyErr_Format(InvalidInputError, "need count >= 0 and a positive image size, got count %lld, %dx%d",
                     count, h, w);
        return 0;
    }
    return 1;
}

PyObject *py_masks_rise(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long seed;
    long long first, count;
    int h, w, grid;
    double p_keep;
    if (!PyArg_ParseTuple(args, "KLLiiid", &seed, &first, &count, &h, &w, &grid, &p_keep)) return NULL;
    if (!positive_size(count, h, w)) return NULL;
    npy_intp shape[3] = {(npy_intp)count, h, w};
    PyObject *out = new_float_array(3, shape);
    if (!out) return NULL;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_masks_rise(seed, first, (int)count, h, w, grid, p_keep, PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out);
        return raise_status(st);
    }
    return out;
}

PyObject *py_masks_rise_orthogonal(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long seed;
    long long first, count;
    int h, w, grid;
    if (!PyArg_ParseTuple(args, "KLLiii", &seed, &first, &count, &h, &w, &grid)) return NULL;
    if (!positive_size(count, h, w)) return NULL;
    npy_intp shape[3] = {(npy_intp)count, h, w};
    PyObject *out = new_float_array(3, shape);
    if (!out) return NULL;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_masks_rise_orthogonal(seed, first, (int)count, h, w, grid, PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out);
        return raise_status(st);
    }
    return out;
}

PyObject *py_orthogonal_block_size(PyObject *self, PyObject *args) {
    (void)self;
    int grid;
    if (!PyArg_ParseTuple(args, "i", &grid)) return NULL;
    const long long rows = fx_orthogonal_block_size(grid);
    if (rows < 0) {
        PyErr_Format(InvalidInputError, "grid must be in 1..46340, got %d", grid);
        return NULL;
    }
    return PyLong_FromLongLong(rows);
}

PyObject *py_masks_patches(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long seed;
    long long first, count;
    int h, w, patch, holes;
    if (!PyArg_ParseTuple(args, "KLLiiii", &seed, &first, &count, &h, &w, &patch, &holes)) return NULL;
    if (!positive_size(count, h, w)) return NULL;
    npy_intp shape[3] = {(npy_intp)count, h, w};
    PyObject *out = new_float_array(3, shape);
    if (!out) return NULL;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_masks_patches(seed, first, (int)count, h, w, patch, holes, PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out);
        return raise_status(st);
    }
    return out;
}

/* image and fill: float32 (h, w, c) of the same shape. */
static int image_and_fill(PyObject *img_obj, PyObject *fill_obj, PyArrayObject **img, PyArrayObject **fill) {
    *img = checked_array(img_obj, "image", NPY_FLOAT32, 3, NULL, 0);
    if (!*img) return 0;
    npy_intp shape[3] = {PyArray_DIM(*img, 0), PyArray_DIM(*img, 1), PyArray_DIM(*img, 2)};
    *fill = checked_array(fill_obj, "fill", NPY_FLOAT32, 3, shape, 0);
    if (!*fill) {
        Py_CLEAR(*img);
        return 0;
    }
    return 1;
}

/* A kernel that builds a batch of perturbed copies of `image`. */
typedef fx_status (*perturb_kernel)(int count, int h, int w, int c, const float *image, const float *fill,
                                    const void *how, float *out);

static fx_status apply_masks_kernel(int count, int h, int w, int c, const float *image, const float *fill,
                                    const void *masks, float *out) {
    return fx_apply_masks(count, h, w, c, image, fill, masks, out);
}

static fx_status occlude_kernel(int count, int h, int w, int c, const float *image, const float *fill,
                                const void *rects, float *out) {
    return fx_occlude(count, h, w, c, image, fill, rects, out);
}

/* (image, fill, how) -> float32 (n, h, w, c); `how` is checked as `how_name`
 * of dtype `how_type` shaped (n, h, w) for masks or (n, 4) for rectangles. */
static PyObject *perturbed_batch(PyObject *args, const char *how_name, int how_type, int per_pixel,
                                 perturb_kernel kernel) {
    PyObject *img_obj, *fill_obj, *how_obj, *out = NULL;
    PyArrayObject *img = NULL, *fill = NULL, *how = NULL;
    if (!PyArg_ParseTuple(args, "OOO", &img_obj, &fill_obj, &how_obj)) return NULL;
    if (!image_and_fill(img_obj, fill_obj, &img, &fill)) return NULL;
    const int h = (int)PyArray_DIM(img, 0), w = (int)PyArray_DIM(img, 1), c = (int)PyArray_DIM(img, 2);
    npy_intp how_shape[3] = {-1, per_pixel ? h : 4, w};
    how = checked_array(how_obj, how_name, how_type, per_pixel ? 3 : 2, how_shape, 0);
    if (!how) goto done;
    npy_intp oshape[4] = {PyArray_DIM(how, 0), h, w, c};
    out = new_float_array(4, oshape);
    if (!out) goto done;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = kernel((int)oshape[0], h, w, c, PyArray_DATA(img), PyArray_DATA(fill), PyArray_DATA(how),
                PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        raise_status(st);
    }
done:
    Py_XDECREF(img);
    Py_XDECREF(fill);
    Py_XDECREF(how);
    return out;
}

PyObject *py_apply_masks(PyObject *self, PyObject *args) {
    (void)self;
    return perturbed_batch(args, "masks", NPY_FLOAT32, 1, apply_masks_kernel);
}

PyObject *py_occlude(PyObject *self, PyObject *args) {
    (void)self;
    return perturbed_batch(args, "rects", NPY_INT32, 0, occlude_kernel);
}

PyObject *py_embedding_scores(PyObject *self, PyObject *args) {
    (void)self;
    const char *kind_name;
    PyObject *emb_obj, *ref_obj, *out = NULL;
    PyArrayObject *emb = NULL, *ref = NULL;
    if (!PyArg_ParseTuple(args, "sOO", &kind_name, &emb_obj, &ref_obj)) return NULL;
    fx_score_kind kind;
    if (strcmp(kind_name, "neg_squared_euclidean") == 0) kind = FX_SCORE_NEG_SQUARED_EUCLIDEAN;
    else if (strcmp(kind_name, "cosine") == 0) kind = FX_SCORE_COSINE;
    else {
        PyErr_Format(InvalidInputError, "score kind must be 'neg_squared_euclidean' or 'cosine', got '%s'",
                     kind_name);
        return NULL;
    }
    emb = checked_array(emb_obj, "embeddings", NPY_FLOAT32, 2, NULL, 0);
    if (!emb) return NULL;
    npy_intp dshape[1] = {PyArray_DIM(emb, 1)};
    ref = checked_array(ref_obj, "reference embedding", NPY_FLOAT32, 1, dshape, 0);
    if (!ref) goto done;
    npy_intp oshape[1] = {PyArray_DIM(emb, 0)};
    out = PyArray_SimpleNew(1, oshape, NPY_FLOAT64);
    if (!out) goto done;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_embedding_scores(kind, (int)oshape[0], (int)dshape[0], PyArray_DATA(emb), PyArray_DATA(ref),
                             PyArray_DATA((PyArrayObject *)out));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        raise_status(st);
    }
done:
    Py_XDECREF(emb);
    Py_XDECREF(ref);
    return out;
}

PyObject *py_correlation_accumulate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *m_obj, *s_obj, *a_obj, *b_obj, *c_obj, *result = NULL;
    PyArrayObject *masks = NULL, *scores = NULL, *sum_m = NULL, *sum_mm = NULL, *sum_ms = NULL;
    if (!PyArg_ParseTuple(args, "OOOOO", &m_obj, &s_obj, &a_obj, &b_obj, &c_obj)) return NULL;
    masks = checked_array(m_obj, "masks", NPY_FLOAT32, 3, NULL, 0);
    if (!masks) return NULL;
    npy_intp n[1] = {PyArray_DIM(masks, 0)};
    npy_intp hw[2] = {PyArray_DIM(masks, 1), PyArray_DIM(masks, 2)};
    if (!(scores = checked_array(s_obj, "scores", NPY_FLOAT64, 1, n, 0))) goto done;
    if (!(sum_m = checked_array(a_obj, "sum_m", NPY_FLOAT64, 2, hw, 1))) goto done;
    if (!(sum_mm = checked_array(b_obj, "sum_mm", NPY_FLOAT64, 2, hw, 1))) goto done;
    if (!(sum_ms = checked_array(c_obj, "sum_ms", NPY_FLOAT64, 2, hw, 1))) goto done;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_correlation_accumulate((int)n[0], (size_t)(hw[0] * hw[1]), PyArray_DATA(masks), PyArray_DATA(scores),
                                   PyArray_DATA(sum_m), PyArray_DATA(sum_mm), PyArray_DATA(sum_ms));
    Py_END_ALLOW_THREADS
    if (st) raise_status(st);
    else result = Py_NewRef(Py_None);
done:
    Py_XDECREF(masks);
    Py_XDECREF(scores);
    Py_XDECREF(sum_m);
    Py_XDECREF(sum_mm);
    Py_XDECREF(sum_ms);
    return result;
}

PyObject *py_rect_accumulate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *r_obj, *v_obj, *s_obj, *h_obj, *result = NULL;
    PyArrayObject *rects = NULL, *values = NULL, *sum = NULL, *hits = NULL;
    if (!PyArg_ParseTuple(args, "OOOO", &r_obj, &v_obj, &s_obj, &h_obj)) return NULL;
    npy_intp rshape[2] = {-1, 4};
    rects = checked_array(r_obj, "rects", NPY_INT32, 2, rshape, 0);
    if (!rects) return NULL;
    npy_intp n[1] = {PyArray_DIM(rects, 0)};
    if (!(values = checked_array(v_obj, "values", NPY_FLOAT64, 1, n, 0))) goto done;
    if (!(sum = checked_array(s_obj, "sum", NPY_FLOAT64, 2, NULL, 1))) goto done;
    npy_intp hw[2] = {PyArray_DIM(sum, 0), PyArray_DIM(sum, 1)};
    if (!(hits = checked_array(h_obj, "hits", NPY_FLOAT64, 2, hw, 1))) goto done;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_rect_accumulate((int)n[0], (int)hw[0], (int)hw[1], PyArray_DATA(rects), PyArray_DATA(values),
                            PyArray_DATA(sum), PyArray_DATA(hits));
    Py_END_ALLOW_THREADS
    if (st) raise_status(st);
    else result = Py_NewRef(Py_None);
done:
    Py_XDECREF(rects);
    Py_XDECREF(values);
    Py_XDECREF(sum);
    Py_XDECREF(hits);
    return result;
}
