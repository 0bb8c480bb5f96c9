/*
 * module.c - fxplain._core: the CPython/NumPy glue over the C core.
 *
 * This file only converts and checks arguments, allocates result arrays,
 * releases the GIL around compute calls, and maps fx_status codes to
 * fxplain's exception classes. All numerics live in the csrc/ C files. Every array
 * the core reads is checked here for dtype (float32), layout (C-contiguous),
 * and exact shape, because the core trusts the sizes it is given.
 */
#define FX_GLUE_MAIN
#include "glue.h"

PyObject *InvalidInputError, *CoreError;

PyObject *raise_status(fx_status st) {
    const char *msg = fx_last_error();
    switch (st) {
    case FX_STATUS_INVALID_ARGUMENT: PyErr_SetString(InvalidInputError, msg); break;
    case FX_STATUS_OUT_OF_MEMORY: PyErr_SetString(PyExc_MemoryError, msg); break;
    default: PyErr_SetString(CoreError, msg); break;
    }
    return NULL;
}

PyArrayObject *checked_array(PyObject *obj, const char *name, int typenum, int ndim, const npy_intp *shape,
                             int writeable) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(InvalidInputError, "%s must be a numpy array, got %s", name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (PyArray_TYPE(arr) != typenum) {
        PyArray_Descr *want = PyArray_DescrFromType(typenum);
        PyErr_Format(InvalidInputError, "%s must have dtype %s, got %s", name, want->typeobj->tp_name,
                     PyArray_DESCR(arr)->typeobj->tp_name);
        Py_DECREF(want);
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(arr)) {
        PyErr_Format(InvalidInputError, "%s must be C-contiguous", name);
        return NULL;
    }
    if (writeable && !PyArray_ISWRITEABLE(arr)) {
        PyErr_Format(InvalidInputError, "%s must be writeable", name);
        return NULL;
    }
    if (PyArray_NDIM(arr) != ndim) {
        PyErr_Format(InvalidInputError, "%s must have %d dimensions, got %d", name, ndim, PyArray_NDIM(arr));
        return NULL;
    }
    for (int i = 0; i < ndim; ++i) {
        if (shape && shape[i] >= 0 && PyArray_DIM(arr, i) != shape[i]) {
            PyErr_Format(InvalidInputError, "%s has size %zd on axis %d, expected %zd", name,
                         (Py_ssize_t)PyArray_DIM(arr, i), i, (Py_ssize_t)shape[i]);
            return NULL;
        }
    }
    Py_INCREF(arr);
    return arr;
}

/* The float32 case, used by the Net methods. */
static PyArrayObject *float_array(PyObject *obj, const char *name, int ndim, const npy_intp *shape) {
    return checked_array(obj, name, NPY_FLOAT32, ndim, shape, 0);
}

/* ---- the Net type ------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    fx_net *net;
} NetObject;

static void Net_dealloc(NetObject *self) {
    fx_net_destroy(self->net);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Net_init(NetObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"channels", "height", "width", NULL};
    int c, h, w;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iii", kwlist, &c, &h, &w)) return -1;
    if (self->net) {
        PyErr_SetString(InvalidInputError, "Net is already initialised");
        return -1;
    }
    fx_status st = fx_net_create(&self->net, c, h, w);
    if (st) {
        raise_status(st);
        return -1;
    }
    return 0;
}

static int node_channels(NetObject *self, int node, npy_intp *c, npy_intp *hw) {
    int nc, nh, nw;
    fx_status st = fx_net_node_shape(self->net, node, &nc, &nh, &nw);
    if (st) {
        raise_status(st);
        return -1;
    }
    *c = nc;
    if (hw) *hw = (npy_intp)nh * nw;
    return 0;
}

static int ready(NetObject *self) {
    if (!self->net) {
        PyErr_SetString(InvalidInputError, "Net is not initialised");
        return 0;
    }
    return 1;
}

static PyObject *Net_set_input_normalization(NetObject *self, PyObject *args) {
    PyObject *mean_obj, *scale_obj;
    if (!ready(self) || !PyArg_ParseTuple(args, "OO", &mean_obj, &scale_obj)) return NULL;
    npy_intp c;
    if (node_channels(self, 0, &c, NULL)) return NULL;
    PyArrayObject *mean = float_array(mean_obj, "mean", 1, &c);
    if (!mean) return NULL;
    PyArrayObject *scale = float_array(scale_obj, "scale", 1, &c);
    if (!scale) {
        Py_DECREF(mean);
        return NULL;
    }
    fx_status st = fx_net_set_input_normalization(self->net, PyArray_DATA(mean), PyArray_DATA(scale));
    Py_DECREF(mean);
    Py_DECREF(scale);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* An optional (int, int) keyword argument: `fallback` when absent or None. */
static int optional_pair(PyObject *obj, const char *name, const int fallback[2], int out[2]) {
    if (!obj || obj == Py_None) {
        out[0] = fallback[0], out[1] = fallback[1];
        return 0;
    }
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 2) {
        PyErr_Format(InvalidInputError, "%s must be a tuple of 2 integers, got %R", name, obj);
        return -1;
    }
    for (int k = 0; k < 2; ++k) {
        PyObject *item = PyTuple_GET_ITEM(obj, k);
        int overflow = 0;
        long v = PyLong_Check(item) ? PyLong_AsLongAndOverflow(item, &overflow) : -1;
        if (!PyLong_Check(item) || PyBool_Check(item) || overflow || v < INT32_MIN || v > INT32_MAX) {
            PyErr_Clear();
            PyErr_Format(InvalidInputError, "%s must be a tuple of 2 integers (int32), got %R", name, obj);
            return -1;
        }
        out[k] = (int)v;
    }
    return 0;
}

static PyObject *Net_add_conv(NetObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"input", "weight", "bias", "stride", "padding", "padding_end", "dilation", "groups",
                             NULL};
    int input, sh, sw, ph, pw, groups = 1, out;
    PyObject *w_obj, *b_obj, *end_obj = NULL, *dil_obj = NULL;
    if (!ready(self) || !PyArg_ParseTupleAndKeywords(args, kwds, "iOO(ii)(ii)|OOi", kwlist, &input, &w_obj, &b_obj,
                                                     &sh, &sw, &ph, &pw, &end_obj, &dil_obj, &groups))
        return NULL;
    const int begin[2] = {ph, pw}, dense[2] = {1, 1};
    int end[2], dil[2];
    if (optional_pair(end_obj, "padding_end", begin, end) || optional_pair(dil_obj, "dilation", dense, dil))
        return NULL;
    npy_intp c;
    if (node_channels(self, input, &c, NULL)) return NULL;
    if (groups < 1 || c % groups != 0) {
        PyErr_Format(InvalidInputError, "conv groups %d must be >= 1 and divide the input's %zd channels", groups,
                     (Py_ssize_t)c);
        return NULL;
    }
    /* the weight holds in/groups input channels per output; the core checks groups divides the outputs */
    npy_intp wshape[4] = {-1, c / groups, -1, -1};
    PyArrayObject *w = float_array(w_obj, "conv weight", 4, wshape), *b = NULL;
    if (!w) return NULL;
    npy_intp oc = PyArray_DIM(w, 0);
    if (oc > INT32_MAX || PyArray_DIM(w, 2) > INT32_MAX || PyArray_DIM(w, 3) > INT32_MAX) {
        Py_DECREF(w);
        PyErr_SetString(InvalidInputError, "conv weight is too large");
        return NULL;
    }
    if (b_obj != Py_None && !(b = float_array(b_obj, "conv bias", 1, &oc))) {
        Py_DECREF(w);
        return NULL;
    }
    fx_status st = fx_net_add_conv_ex(self->net, input, (int)oc, (int)PyArray_DIM(w, 2), (int)PyArray_DIM(w, 3),
                                      sh, sw, ph, pw, end[0], end[1], dil[0], dil[1], groups, PyArray_DATA(w),
                                      b ? PyArray_DATA(b) : NULL, &out);
    Py_DECREF(w);
    Py_XDECREF(b);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_scale_shift(NetObject *self, PyObject *args) {
    int input, out;
    PyObject *s_obj, *t_obj;
    if (!ready(self) || !PyArg_ParseTuple(args, "iOO", &input, &s_obj, &t_obj)) return NULL;
    npy_intp c;
    if (node_channels(self, input, &c, NULL)) return NULL;
    PyArrayObject *s = float_array(s_obj, "scale", 1, &c);
    if (!s) return NULL;
    PyArrayObject *t = float_array(t_obj, "shift", 1, &c);
    if (!t) {
        Py_DECREF(s);
        return NULL;
    }
    fx_status st = fx_net_add_scale_shift(self->net, input, PyArray_DATA(s), PyArray_DATA(t), &out);
    Py_DECREF(s);
    Py_DECREF(t);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_relu(NetObject *self, PyObject *args) {
    int input, out;
    if (!ready(self) || !PyArg_ParseTuple(args, "i", &input)) return NULL;
    fx_status st = fx_net_add_relu(self->net, input, &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_prelu(NetObject *self, PyObject *args) {
    int input, out;
    PyObject *s_obj;
    if (!ready(self) || !PyArg_ParseTuple(args, "iO", &input, &s_obj)) return NULL;
    npy_intp c;
    if (node_channels(self, input, &c, NULL)) return NULL;
    PyArrayObject *s = float_array(s_obj, "prelu slope", 1, &c);
    if (!s) return NULL;
    fx_status st = fx_net_add_prelu(self->net, input, PyArray_DATA(s), &out);
    Py_DECREF(s);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_pool(NetObject *self, PyObject *args) {
    int input, kh, kw, sh, sw, ph, pw, out;
    const char *kind;
    PyObject *end_obj = NULL;
    if (!ready(self) ||
        !PyArg_ParseTuple(args, "is(ii)(ii)(ii)|O", &input, &kind, &kh, &kw, &sh, &sw, &ph, &pw, &end_obj))
        return NULL;
    const int begin[2] = {ph, pw};
    int end[2];
    if (optional_pair(end_obj, "padding_end", begin, end)) return NULL;
    fx_pool_kind k;
    if (strcmp(kind, "max") == 0) k = FX_POOL_MAX;
    else if (strcmp(kind, "avg") == 0) k = FX_POOL_AVG;
    else {
        PyErr_Format(InvalidInputError, "pool kind must be 'max' or 'avg', got %R", PyTuple_GET_ITEM(args, 1));
        return NULL;
    }
    fx_status st = fx_net_add_pool_ex(self->net, input, k, kh, kw, sh, sw, ph, pw, end[0], end[1], &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_global_avg_pool(NetObject *self, PyObject *args) {
    int input, out;
    if (!ready(self) || !PyArg_ParseTuple(args, "i", &input)) return NULL;
    fx_status st = fx_net_add_global_avg_pool(self->net, input, &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_sum(NetObject *self, PyObject *args) {
    int a, b, out;
    if (!ready(self) || !PyArg_ParseTuple(args, "ii", &a, &b)) return NULL;
    fx_status st = fx_net_add_sum(self->net, a, b, &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_sigmoid(NetObject *self, PyObject *args) {
    int input, out;
    if (!ready(self) || !PyArg_ParseTuple(args, "i", &input)) return NULL;
    fx_status st = fx_net_add_sigmoid(self->net, input, &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_leaky_relu(NetObject *self, PyObject *args) {
    int input, out;
    double alpha;
    if (!ready(self) || !PyArg_ParseTuple(args, "id", &input, &alpha)) return NULL;
    /* a finite double can still overflow float32: refuse it here rather than pass inf */
    if (!isfinite(alpha) || fabs(alpha) > 3.4e38) {
        PyErr_Format(InvalidInputError, "leaky_relu alpha must be a finite float32, got %g", alpha);
        return NULL;
    }
    fx_status st = fx_net_add_leaky_relu(self->net, input, (float)alpha, &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_mul(NetObject *self, PyObject *args) {
    int a, b, out;
    if (!ready(self) || !PyArg_ParseTuple(args, "ii", &a, &b)) return NULL;
    fx_status st = fx_net_add_mul(self->net, a, b, &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_concat(NetObject *self, PyObject *args) {
    int a, b, out;
    if (!ready(self) || !PyArg_ParseTuple(args, "ii", &a, &b)) return NULL;
    fx_status st = fx_net_add_concat(self->net, a, b, &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_dense(NetObject *self, PyObject *args) {
    int input, out;
    PyObject *w_obj, *b_obj;
    if (!ready(self) || !PyArg_ParseTuple(args, "iOO", &input, &w_obj, &b_obj)) return NULL;
    npy_intp c, hw;
    if (node_channels(self, input, &c, &hw)) return NULL;
    npy_intp wshape[2] = {-1, c * hw};
    PyArrayObject *w = float_array(w_obj, "dense weight", 2, wshape), *b = NULL;
    if (!w) return NULL;
    npy_intp oc = PyArray_DIM(w, 0);
    if (b_obj != Py_None && !(b = float_array(b_obj, "dense bias", 1, &oc))) {
        Py_DECREF(w);
        return NULL;
    }
    fx_status st = fx_net_add_dense(self->net, input, (int)oc, PyArray_DATA(w), b ? PyArray_DATA(b) : NULL, &out);
    Py_DECREF(w);
    Py_XDECREF(b);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_node_shape(NetObject *self, PyObject *args) {
    int node, c, h, w;
    if (!ready(self) || !PyArg_ParseTuple(args, "i", &node)) return NULL;
    fx_status st = fx_net_node_shape(self->net, node, &c, &h, &w);
    if (st) return raise_status(st);
    return Py_BuildValue("(iii)", c, h, w);
}

static PyObject *Net_set_math_mode(NetObject *self, PyObject *args) {
    const char *mode;
    if (!ready(self) || !PyArg_ParseTuple(args, "s", &mode)) return NULL;
    fx_math_mode m;
    if (strcmp(mode, "fp32") == 0) m = FX_MATH_FP32;
    else if (strcmp(mode, "bf16") == 0) m = FX_MATH_BF16;
    else if (strcmp(mode, "int8") == 0) m = FX_MATH_INT8;
    else {
        PyErr_Format(InvalidInputError, "math mode must be 'fp32', 'bf16' or 'int8', got %R",
                     PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    fx_status st = fx_net_set_math_mode(self->net, m);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Net_output_shape(NetObject *self, PyObject *noargs) {
    (void)noargs;
    int c, h, w;
    if (!ready(self)) return NULL;
    fx_status st = fx_net_output_shape(self->net, &c, &h, &w);
    if (st) return raise_status(st);
    return Py_BuildValue("(iii)", c, h, w);
}

static PyObject *Net_finalize(NetObject *self, PyObject *args) {
    int output;
    if (!ready(self) || !PyArg_ParseTuple(args, "i", &output)) return NULL;
    fx_status st = fx_net_finalize(self->net, output);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Net_step_count(NetObject *self, PyObject *args) {
    int batch, steps = 0;
    if (!ready(self) || !PyArg_ParseTuple(args, "i", &batch)) return NULL;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_net_step_count(self->net, batch, &steps);
    Py_END_ALLOW_THREADS
    if (st) return raise_status(st);
    return PyLong_FromLong(steps);
}

static PyObject *Net_calibrate_int8(NetObject *self, PyObject *args) {
    PyObject *x_obj;
    if (!ready(self) || !PyArg_ParseTuple(args, "O", &x_obj)) return NULL;
    int c, h, w;
    fx_net_node_shape(self->net, 0, &c, &h, &w);
    npy_intp shape[4] = {-1, h, w, c};
    PyArrayObject *x = float_array(x_obj, "pixels", 4, shape);
    if (!x) return NULL;
    npy_intp n = PyArray_DIM(x, 0);
    if (n < 1 || n > INT32_MAX) {
        Py_DECREF(x);
        PyErr_Format(InvalidInputError, "pixels must hold at least one image, got %zd", (Py_ssize_t)n);
        return NULL;
    }
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_net_calibrate_int8(self->net, (int)n, PyArray_DATA(x));
    Py_END_ALLOW_THREADS
    Py_DECREF(x);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

/* The forward pass of Net.forward (training < 0) and Net.train_forward
 * (training = 0: input gradients later, 1: parameter gradients too). */
static PyObject *forward_call(NetObject *self, PyObject *x_obj, int training) {
    int c, h, w, oc, oh, ow;
    fx_net_node_shape(self->net, 0, &c, &h, &w);
    fx_status st = fx_net_output_shape(self->net, &oc, &oh, &ow);
    if (st) return raise_status(st);
    npy_intp shape[4] = {-1, h, w, c};
    PyArrayObject *x = float_array(x_obj, "pixels", 4, shape);
    if (!x) return NULL;
    npy_intp n = PyArray_DIM(x, 0);
    if (n < 1 || n > INT32_MAX) {
        Py_DECREF(x);
        PyErr_Format(InvalidInputError, "pixels must hold at least one image, got %zd", (Py_ssize_t)n);
        return NULL;
    }
    npy_intp out_shape[4] = {n, oc, oh, ow};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(4, out_shape, NPY_FLOAT32);
    if (out) {
        Py_BEGIN_ALLOW_THREADS
        if (training < 0) st = fx_net_forward(self->net, (int)n, PyArray_DATA(x), PyArray_DATA(out));
        else st = fx_net_train_forward(self->net, training, (int)n, PyArray_DATA(x), PyArray_DATA(out));
        Py_END_ALLOW_THREADS
        if (st) {
            Py_CLEAR(out);
            raise_status(st);
        }
    }
    Py_DECREF(x);
    return (PyObject *)out;
}

static PyObject *Net_forward(NetObject *self, PyObject *args) {
    PyObject *x_obj;
    if (!ready(self) || !PyArg_ParseTuple(args, "O", &x_obj)) return NULL;
    return forward_call(self, x_obj, -1);
}

/* input_gradient(pixels[N,...], grad_output[N,...]) and, with `shared`,
 * input_gradient_shared(pixels[1,...], grad_output[K,...]). */
static PyObject *gradient_call(NetObject *self, PyObject *args, int shared) {
    PyObject *x_obj, *g_obj, *out = NULL, *grad = NULL;
    if (!ready(self) || !PyArg_ParseTuple(args, "OO", &x_obj, &g_obj)) return NULL;
    int c, h, w, oc, oh, ow;
    fx_net_node_shape(self->net, 0, &c, &h, &w);
    fx_status st = fx_net_output_shape(self->net, &oc, &oh, &ow);
    if (st) return raise_status(st);
    npy_intp shape[4] = {shared ? 1 : -1, h, w, c};
    PyArrayObject *x = float_array(x_obj, "pixels", 4, shape), *g = NULL;
    if (!x) return NULL;
    npy_intp gshape[4] = {shared ? -1 : PyArray_DIM(x, 0), oc, oh, ow};
    if (!(g = float_array(g_obj, "grad_output", 4, gshape))) goto done;
    npy_intp n = PyArray_DIM(g, 0);
    if (n < 1 || n > INT32_MAX) {
        PyErr_Format(InvalidInputError, "need at least one image and gradient, got %zd", (Py_ssize_t)n);
        goto done;
    }
    npy_intp out_shape[4] = {PyArray_DIM(x, 0), oc, oh, ow}, grad_shape[4] = {n, h, w, c};
    if (!(out = PyArray_SimpleNew(4, out_shape, NPY_FLOAT32))) goto done;
    if (!(grad = PyArray_SimpleNew(4, grad_shape, NPY_FLOAT32))) goto done;
    Py_BEGIN_ALLOW_THREADS
    if (shared)
        st = fx_net_input_gradient_shared(self->net, (int)n, PyArray_DATA(x), PyArray_DATA(g),
                                          PyArray_DATA((PyArrayObject *)out), PyArray_DATA((PyArrayObject *)grad));
    else
        st = fx_net_input_gradient(self->net, (int)n, PyArray_DATA(x), PyArray_DATA(g),
                                   PyArray_DATA((PyArrayObject *)out), PyArray_DATA((PyArrayObject *)grad));
    Py_END_ALLOW_THREADS
    if (st) {
        Py_CLEAR(out);
        raise_status(st);
    }
done:
    Py_XDECREF(x);
    Py_XDECREF(g);
    if (!out) {
        Py_XDECREF(grad);
        return NULL;
    }
    return Py_BuildValue("(NN)", out, grad);
}

static PyObject *Net_input_gradient(NetObject *self, PyObject *args) { return gradient_call(self, args, 0); }

static PyObject *Net_input_gradient_shared(NetObject *self, PyObject *args) { return gradient_call(self, args, 1); }

/* parameter_sizes(node) -> (weight values, bias values) */
static PyObject *Net_parameter_sizes(NetObject *self, PyObject *args) {
    int node;
    size_t wc, bc;
    if (!ready(self) || !PyArg_ParseTuple(args, "i", &node)) return NULL;
    fx_status st = fx_net_parameter_sizes(self->net, node, &wc, &bc);
    if (st) return raise_status(st);
    return Py_BuildValue("(nn)", (Py_ssize_t)wc, (Py_ssize_t)bc);
}

/* set_parameters(node, weight (flat float32), bias (float32) or None) */
static PyObject *Net_set_parameters(NetObject *self, PyObject *args) {
    int node;
    size_t wc, bc;
    PyObject *w_obj, *b_obj;
    if (!ready(self) || !PyArg_ParseTuple(args, "iOO", &node, &w_obj, &b_obj)) return NULL;
    fx_status st = fx_net_parameter_sizes(self->net, node, &wc, &bc);
    if (st) return raise_status(st);
    if (!wc) return raise_status(fx_net_set_parameters(self->net, node, NULL, NULL)); /* says why */
    npy_intp wshape[1] = {(npy_intp)wc}, bshape[1] = {(npy_intp)bc};
    PyArrayObject *w = float_array(w_obj, "weight", 1, wshape), *b = NULL;
    if (!w) return NULL;
    if (bc && !(b = float_array(b_obj, "bias", 1, bshape))) {
        Py_DECREF(w);
        return NULL;
    }
    st = fx_net_set_parameters(self->net, node, PyArray_DATA(w), b ? PyArray_DATA(b) : NULL);
    Py_DECREF(w);
    Py_XDECREF(b);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static int node_count(NetObject *self) {
    int n_nodes = 0, c, h, w;
    while (fx_net_node_shape(self->net, n_nodes, &c, &h, &w) == FX_STATUS_OK) n_nodes++;
    return n_nodes;
}

/* A dict {node: (dweight, dbias or None)} of zeroed float32 arrays for every
 * conv/dense layer, and the pointer tables the core fills them through
 * (wptr and bptr, PyMem-allocated, [node_count]). The dict keeps the arrays alive. */
static PyObject *gradient_buffers(NetObject *self, float ***wptr, float ***bptr) {
    const int n_nodes = node_count(self);
    PyObject *grads = PyDict_New();
    *wptr = PyMem_Calloc((size_t)n_nodes, sizeof **wptr);
    *bptr = PyMem_Calloc((size_t)n_nodes, sizeof **bptr);
    if (!grads || !*wptr || !*bptr) goto fail;
    for (int j = 1; j < n_nodes; ++j) {
        size_t wc, bc;
        fx_net_parameter_sizes(self->net, j, &wc, &bc);
        if (!wc) continue;
        npy_intp ws[1] = {(npy_intp)wc}, bs[1] = {(npy_intp)bc};
        PyObject *dw = PyArray_ZEROS(1, ws, NPY_FLOAT32, 0);
        PyObject *db = bc ? PyArray_ZEROS(1, bs, NPY_FLOAT32, 0) : Py_NewRef(Py_None);
        PyObject *key = PyLong_FromLong(j);
        PyObject *pair = (dw && db) ? PyTuple_Pack(2, dw, db) : NULL;
        int bad = !key || !pair || PyDict_SetItem(grads, key, pair) < 0;
        if (!bad) {
            (*wptr)[j] = PyArray_DATA((PyArrayObject *)dw);
            if (bc) (*bptr)[j] = PyArray_DATA((PyArrayObject *)db);
        }
        Py_XDECREF(dw);
        Py_XDECREF(db);
        Py_XDECREF(key);
        Py_XDECREF(pair);
        if (bad) goto fail;
    }
    return grads;
fail:
    if (!PyErr_Occurred()) PyErr_NoMemory();
    Py_XDECREF(grads);
    PyMem_Free(*wptr);
    PyMem_Free(*bptr);
    *wptr = *bptr = NULL;
    return NULL;
}

/* parameter_gradients(pixels[N,...], grad_output[N,...]) -> (output, grad_pixels, {node: (dW, db or None)}) */
static PyObject *Net_parameter_gradients(NetObject *self, PyObject *args) {
    PyObject *x_obj, *g_obj, *result = NULL, *out = NULL, *grad = NULL, *grads = NULL;
    PyArrayObject *x = NULL, *g = NULL;
    float **wptr = NULL, **bptr = NULL;
    if (!ready(self) || !PyArg_ParseTuple(args, "OO", &x_obj, &g_obj)) return NULL;
    int c, h, w, oc, oh, ow;
    fx_net_node_shape(self->net, 0, &c, &h, &w);
    fx_status st = fx_net_output_shape(self->net, &oc, &oh, &ow);
    if (st) return raise_status(st);
    npy_intp shape[4] = {-1, h, w, c};
    if (!(x = float_array(x_obj, "pixels", 4, shape))) return NULL;
    npy_intp n = PyArray_DIM(x, 0);
    npy_intp gshape[4] = {n, oc, oh, ow};
    if (!(g = float_array(g_obj, "grad_output", 4, gshape))) goto done;
    if (n < 1 || n > INT32_MAX) {
        PyErr_Format(InvalidInputError, "pixels must hold at least one image, got %zd", (Py_ssize_t)n);
        goto done;
    }
    if (!(grads = gradient_buffers(self, &wptr, &bptr))) goto done;
    npy_intp gs[4] = {n, h, w, c};
    if (!(out = PyArray_SimpleNew(4, gshape, NPY_FLOAT32)) || !(grad = PyArray_SimpleNew(4, gs, NPY_FLOAT32)))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    st = fx_net_parameter_gradients(self->net, (int)n, PyArray_DATA(x), PyArray_DATA(g),
                                    PyArray_DATA((PyArrayObject *)out), PyArray_DATA((PyArrayObject *)grad), wptr,
                                    bptr);
    Py_END_ALLOW_THREADS
    if (st) raise_status(st);
    else result = Py_BuildValue("(OOO)", out, grad, grads);
done:
    PyMem_Free(wptr);
    PyMem_Free(bptr);
    Py_XDECREF(x);
    Py_XDECREF(g);
    Py_XDECREF(out);
    Py_XDECREF(grad);
    Py_XDECREF(grads);
    return result;
}

/* train_forward(pixels[N,H,W,C], parameters) -> output[N, C_out, H_out, W_out] */
static PyObject *Net_train_forward(NetObject *self, PyObject *args) {
    PyObject *x_obj;
    int parameters;
    if (!ready(self) || !PyArg_ParseTuple(args, "Op", &x_obj, &parameters)) return NULL;
    return forward_call(self, x_obj, parameters);
}

/* train_backward(grad_output[N,...]) -> (grad_pixels, {node: (dW, db or None)}) */
static PyObject *Net_train_backward(NetObject *self, PyObject *args) {
    PyObject *g_obj, *result = NULL, *grad = NULL, *grads = NULL;
    PyArrayObject *g = NULL;
    float **wptr = NULL, **bptr = NULL;
    if (!ready(self) || !PyArg_ParseTuple(args, "O", &g_obj)) return NULL;
    int c, h, w, oc, oh, ow;
    fx_net_node_shape(self->net, 0, &c, &h, &w);
    fx_status st = fx_net_output_shape(self->net, &oc, &oh, &ow);
    if (st) return raise_status(st);
    npy_intp gshape[4] = {-1, oc, oh, ow};
    if (!(g = float_array(g_obj, "grad_output", 4, gshape))) return NULL;
    npy_intp n = PyArray_DIM(g, 0);
    if (n < 1 || n > INT32_MAX) {
        PyErr_Format(InvalidInputError, "grad_output must hold at least one image, got %zd", (Py_ssize_t)n);
        goto done;
    }
    if (!(grads = gradient_buffers(self, &wptr, &bptr))) goto done;
    npy_intp gs[4] = {n, h, w, c};
    if (!(grad = PyArray_SimpleNew(4, gs, NPY_FLOAT32))) goto done;
    Py_BEGIN_ALLOW_THREADS
    /* the core checks n against the forward pass it goes back through */
    st = fx_net_train_backward(self->net, (int)n, PyArray_DATA(g), PyArray_DATA((PyArrayObject *)grad), wptr, bptr);
    Py_END_ALLOW_THREADS
    if (st) raise_status(st);
    else result = Py_BuildValue("(OO)", grad, grads);
done:
    PyMem_Free(wptr);
    PyMem_Free(bptr);
    Py_XDECREF(g);
    Py_XDECREF(grad);
    Py_XDECREF(grads);
    return result;
}

static PyObject *Net_add_reshape(NetObject *self, PyObject *args) {
    int input, c, h, w, out;
    if (!ready(self) || !PyArg_ParseTuple(args, "i(iii)", &input, &c, &h, &w)) return NULL;
    fx_status st = fx_net_add_reshape(self->net, input, c, h, w, &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyObject *Net_add_resize(NetObject *self, PyObject *args) {
    int input, h, w, out;
    const char *kind;
    if (!ready(self) || !PyArg_ParseTuple(args, "i(ii)s", &input, &h, &w, &kind)) return NULL;
    fx_resize_kind k;
    if (strcmp(kind, "nearest") == 0) k = FX_RESIZE_NEAREST;
    else if (strcmp(kind, "bilinear") == 0) k = FX_RESIZE_BILINEAR;
    else {
        PyErr_Format(InvalidInputError, "resize kind must be 'nearest' or 'bilinear', got %R",
                     PyTuple_GET_ITEM(args, 2));
        return NULL;
    }
    fx_status st = fx_net_add_resize(self->net, input, h, w, k, &out);
    if (st) return raise_status(st);
    return PyLong_FromLong(out);
}

static PyMethodDef Net_methods[] = {
    {"set_input_normalization", (PyCFunction)Net_set_input_normalization, METH_VARARGS,
     "set_input_normalization(mean, scale): x = (pixel - mean[c]) * scale[c]."},
    {"add_conv", (PyCFunction)(void (*)(void))Net_add_conv, METH_VARARGS | METH_KEYWORDS,
     "add_conv(input, weight[O,I/groups,kh,kw], bias[O] or None, (sh, sw), (ph, pw), padding_end=(ph, pw), "
     "dilation=(1, 1), groups=1) -> node id. padding is top, left; padding_end bottom, right."},
    {"add_scale_shift", (PyCFunction)Net_add_scale_shift, METH_VARARGS,
     "add_scale_shift(input, scale[C], shift[C]) -> node id."},
    {"add_relu", (PyCFunction)Net_add_relu, METH_VARARGS, "add_relu(input) -> node id."},
    {"add_prelu", (PyCFunction)Net_add_prelu, METH_VARARGS, "add_prelu(input, slope[C]) -> node id."},
    {"add_pool", (PyCFunction)Net_add_pool, METH_VARARGS,
     "add_pool(input, 'max'|'avg', (kh, kw), (sh, sw), (ph, pw)[, (pad_bottom, pad_right)]) -> node id."},
    {"add_sigmoid", (PyCFunction)Net_add_sigmoid, METH_VARARGS, "add_sigmoid(input) -> node id."},
    {"add_leaky_relu", (PyCFunction)Net_add_leaky_relu, METH_VARARGS,
     "add_leaky_relu(input, alpha) -> node id (x if x > 0 else alpha * x)."},
    {"add_mul", (PyCFunction)Net_add_mul, METH_VARARGS,
     "add_mul(a, b) -> node id (equal shapes, or one of them a Cx1x1 gate)."},
    {"add_concat", (PyCFunction)Net_add_concat, METH_VARARGS, "add_concat(a, b) -> node id (along channels)."},
    {"add_global_avg_pool", (PyCFunction)Net_add_global_avg_pool, METH_VARARGS,
     "add_global_avg_pool(input) -> node id."},
    {"add_sum", (PyCFunction)Net_add_sum, METH_VARARGS, "add_sum(a, b) -> node id (zero-padded sum)."},
    {"add_dense", (PyCFunction)Net_add_dense, METH_VARARGS,
     "add_dense(input, weight[O, C*H*W], bias[O] or None) -> node id."},
    {"add_reshape", (PyCFunction)Net_add_reshape, METH_VARARGS,
     "add_reshape(input, (C, H, W)) -> node id (a view of the input's values in C, H, W order)."},
    {"add_resize", (PyCFunction)Net_add_resize, METH_VARARGS,
     "add_resize(input, (H, W), 'nearest'|'bilinear') -> node id."},
    {"train_forward", (PyCFunction)Net_train_forward, METH_VARARGS,
     "train_forward(pixels, parameters: bool) -> output: a forward pass kept for train_backward."},
    {"train_backward", (PyCFunction)Net_train_backward, METH_VARARGS,
     "train_backward(grad_output) -> (grad_pixels, {node: (dweight, dbias or None)} or {}):\n"
     "the backward pass of the last train_forward (parameter gradients if it asked for them)."},
    {"node_shape", (PyCFunction)Net_node_shape, METH_VARARGS, "node_shape(node) -> (C, H, W)."},
    {"set_math_mode", (PyCFunction)Net_set_math_mode, METH_VARARGS,
     "set_math_mode('fp32' | 'bf16'): arithmetic of convolutions and dense layers."},
    {"output_shape", (PyCFunction)Net_output_shape, METH_NOARGS,
     "output_shape() -> (C, H, W) of the finalized network's output."},
    {"finalize", (PyCFunction)Net_finalize, METH_VARARGS, "finalize(output): fuse and freeze the graph."},
    {"step_count", (PyCFunction)Net_step_count, METH_VARARGS,
     "step_count(batch) -> number of oneDNN primitives a forward pass runs."},
    {"input_gradient", (PyCFunction)Net_input_gradient, METH_VARARGS,
     "input_gradient(pixels[N,H,W,C], grad_output[N,C_out,H_out,W_out]) -> (output, gradient[N,H,W,C]):\n"
     "the gradient of sum(output * grad_output) with respect to the pixels. Releases the GIL."},
    {"input_gradient_shared", (PyCFunction)Net_input_gradient_shared, METH_VARARGS,
     "input_gradient_shared(pixels[1,H,W,C], grad_output[K,...]) -> (output[1,...], gradient[K,H,W,C]):\n"
     "K gradients of one image; the forward pass runs once. Releases the GIL."},
    {"parameter_sizes", (PyCFunction)Net_parameter_sizes, METH_VARARGS,
     "parameter_sizes(node) -> (weight values, bias values) of a conv/dense layer (0, 0 otherwise)."},
    {"set_parameters", (PyCFunction)Net_set_parameters, METH_VARARGS,
     "set_parameters(node, weight flat float32, bias float32 or None): replace a layer's parameters."},
    {"parameter_gradients", (PyCFunction)Net_parameter_gradients, METH_VARARGS,
     "parameter_gradients(pixels, grad_output) -> (output, grad_pixels, {node: (dweight, dbias or None)}):\n"
     "gradients of sum(output * grad_output) for every conv/dense layer (flat, layouts as added)."},
    {"calibrate_int8", (PyCFunction)Net_calibrate_int8, METH_VARARGS,
     "calibrate_int8(pixels[N,H,W,C] float32): activation scales of the int8 mode from an FP32 pass."},
    {"forward", (PyCFunction)Net_forward, METH_VARARGS,
     "forward(pixels[N,H,W,C] float32) -> float32 [N, C_out, H_out, W_out]. Releases the GIL."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject NetType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fxplain._core.Net",
    .tp_basicsize = sizeof(NetObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A network run by the oneDNN core. Build with add_*, then finalize(output) and forward().",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Net_init,
    .tp_dealloc = (destructor)Net_dealloc,
    .tp_methods = Net_methods,
};

/* ---- module functions ---------------------------------------------------- */

static PyObject *backend_info(PyObject *self, PyObject *noargs) {
    (void)self, (void)noargs;
    fx_backend_info info;
    fx_status st = fx_backend_get_info(&info);
    if (st) return raise_status(st);
    char version[64];
    snprintf(version, sizeof version, "%d.%d.%d", info.major, info.minor, info.patch);
    return Py_BuildValue("{s:s,s:s,s:s,s:s}", "onednn_version", version, "onednn_hash", info.hash,
                         "cpu_runtime", info.cpu_runtime, "isa", info.isa);
}

static PyObject *set_num_threads(PyObject *self, PyObject *args) {
    (void)self;
    int n;
    if (!PyArg_ParseTuple(args, "i", &n)) return NULL;
    fx_status st = fx_set_num_threads(n);
    if (st) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *get_num_threads(PyObject *self, PyObject *noargs) {
    (void)self, (void)noargs;
    return PyLong_FromLong(fx_get_num_threads());
}

/* quantize_per_channel(w[rows, per_row] float32, levels) -> (q int8 [rows, per_row], scales float32 [rows]) */
static PyObject *quantize_per_channel(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *w_obj, *q = NULL, *scales = NULL;
    int levels;
    if (!PyArg_ParseTuple(args, "Oi", &w_obj, &levels)) return NULL;
    PyArrayObject *w = float_array(w_obj, "weights", 2, NULL);
    if (!w) return NULL;
    npy_intp rows = PyArray_DIM(w, 0), per_row = PyArray_DIM(w, 1);
    if (rows < 1 || per_row < 1 || rows > INT32_MAX) {
        PyErr_Format(InvalidInputError, "weights must be a non-empty (rows, per_row) array, got (%zd, %zd)",
                     (Py_ssize_t)rows, (Py_ssize_t)per_row);
        goto done;
    }
    npy_intp shape[2] = {rows, per_row};
    if (!(q = PyArray_SimpleNew(2, shape, NPY_INT8)) || !(scales = PyArray_SimpleNew(1, shape, NPY_FLOAT32)))
        goto done;
    fx_status st = fx_quantize_per_channel(PyArray_DATA(w), (int)rows, (size_t)per_row, levels,
                                           PyArray_DATA((PyArrayObject *)q), PyArray_DATA((PyArrayObject *)scales));
    if (st) {
        raise_status(st);
        Py_CLEAR(q);
    }
done:
    Py_DECREF(w);
    if (!q) {
        Py_XDECREF(scales);
        return NULL;
    }
    PyObject *result = Py_BuildValue("(NN)", q, scales);
    return result;
}

static PyMethodDef module_methods[] = {
    {"quantize_per_channel", quantize_per_channel, METH_VARARGS,
     "quantize_per_channel(w[rows, per_row] float32, levels) -> (int8 q, float32 scales): symmetric, per row."},
    {"backend_info", backend_info, METH_NOARGS,
     "backend_info() -> dict with the oneDNN version, build hash, CPU runtime and ISA in use."},
    {"set_num_threads", set_num_threads, METH_VARARGS,
     "set_num_threads(n): threads of the calling thread's core calls from now on (an OpenMP setting)."},
    {"get_num_threads", get_num_threads, METH_NOARGS, "get_num_threads() -> threads of the calling thread's calls."},
    SALIENCY_METHODS
    FACES_METHODS
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "fxplain._core",
                                        "fxplain's C core (oneDNN networks and kernels).", -1,
                                        module_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__core(void) {
    import_array();
    PyObject *errors = PyImport_ImportModule("fxplain._util.errors");
    if (!errors) return NULL;
    InvalidInputError = PyObject_GetAttrString(errors, "InvalidInputError");
    CoreError = PyObject_GetAttrString(errors, "CoreError");
    Py_DECREF(errors);
    if (!InvalidInputError || !CoreError) return NULL;
    if (PyType_Ready(&NetType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    Py_INCREF(&NetType);
    if (PyModule_AddObject(m, "Net", (PyObject *)&NetType) < 0) {
        Py_DECREF(&NetType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
