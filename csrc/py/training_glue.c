/*
 * training_glue.c - module functions of fxplain._core used to train
 * networks: the Adam step and the pixel losses. Argument checks only; the
 * arithmetic is in csrc/optim.c and csrc/losses.c.
 */
#include "glue.h"

PyObject *py_adam_update(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *p_obj, *g_obj, *m_obj, *v_obj, *result = NULL;
    PyArrayObject *p = NULL, *g = NULL, *m = NULL, *v = NULL;
    float lr, beta1, beta2, eps;
    int step;
    if (!PyArg_ParseTuple(args, "OOOOffffi", &p_obj, &g_obj, &m_obj, &v_obj, &lr, &beta1, &beta2, &eps, &step))
        return NULL;
    if (!(p = checked_array(p_obj, "param", NPY_FLOAT32, 1, NULL, 1))) return NULL;
    npy_intp n[1] = {PyArray_DIM(p, 0)};
    if (!(g = checked_array(g_obj, "grad", NPY_FLOAT32, 1, n, 0))) goto done;
    if (!(m = checked_array(m_obj, "m", NPY_FLOAT32, 1, n, 1))) goto done;
    if (!(v = checked_array(v_obj, "v", NPY_FLOAT32, 1, n, 1))) goto done;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_adam_update((size_t)n[0], PyArray_DATA(p), PyArray_DATA(g), PyArray_DATA(m), PyArray_DATA(v), lr, beta1,
                        beta2, eps, step);
    Py_END_ALLOW_THREADS
    if (st) raise_status(st);
    else result = Py_NewRef(Py_None);
done:
    Py_XDECREF(p);
    Py_XDECREF(g);
    Py_XDECREF(m);
    Py_XDECREF(v);
    return result;
}

PyObject *py_pixel_loss(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o_obj, *t_obj, *grad = NULL, *result = NULL;
    PyArrayObject *out = NULL, *target = NULL;
    const char *kind;
    float weight;
    if (!PyArg_ParseTuple(args, "OOsf", &o_obj, &t_obj, &kind, &weight)) return NULL;
    fx_loss_kind k;
    if (strcmp(kind, "l1") == 0) k = FX_LOSS_L1;
    else if (strcmp(kind, "l2") == 0) k = FX_LOSS_L2;
    else {
        PyErr_Format(InvalidInputError, "pixel loss must be 'l1' or 'l2', got %R", PyTuple_GET_ITEM(args, 2));
        return NULL;
    }
    if (!PyArray_Check(o_obj)) {
        PyErr_SetString(InvalidInputError, "out must be a numpy array");
        return NULL;
    }
    const int nd = PyArray_NDIM((PyArrayObject *)o_obj);
    if (!(out = checked_array(o_obj, "out", NPY_FLOAT32, nd, NULL, 0))) return NULL;
    if (!(target = checked_array(t_obj, "target", NPY_FLOAT32, nd, PyArray_DIMS(out), 0))) goto done;
    if (!(grad = PyArray_SimpleNew(nd, PyArray_DIMS(out), NPY_FLOAT32))) goto done;
    double loss = 0.0;
    fx_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fx_pixel_loss((size_t)PyArray_SIZE(out), PyArray_DATA(out), PyArray_DATA(target), k, weight,
                       PyArray_DATA((PyArrayObject *)grad), &loss);
    Py_END_ALLOW_THREADS
    if (st) raise_status(st);
    else result = Py_BuildValue("(dO)", loss, grad);
done:
    Py_XDECREF(out);
    Py_XDECREF(target);
    Py_XDECREF(grad);
    return result;
}
