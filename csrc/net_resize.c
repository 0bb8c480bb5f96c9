/*
 * net_resize.c - the resize layer as two matrix products on oneDNN matmul.
 *
 * Resampling one axis is multiplication by a small constant matrix A
 * (out x in: one 1 per row for nearest, two weights for bilinear), so
 * resizing an image is Y = A_h X A_w^T per channel, and its gradient is
 * dX = A_h^T dY A_w. oneDNN 3.2's resampling primitive has only a reference
 * backward pass for non-integer factors (7.7 ms for a decoder's final
 * 80 -> 150 RGB layer at batch 16, against 0.6 ms forward; measured with
 * ONEDNN_VERBOSE=profile_exec); the two matmuls that replace it take
 * about 1.7 ms. Tensors stay channels-last (NHWC), except for few channels
 * (planar NCHW then); the matmuls read them through views of the buffers.
 *
 * Both builders of the kind are here (listed in net_layers.c); the backward
 * one hands the input's gradient to fxi_backward_deliver (net_backward.c).
 *
 * Sampling (as fxplain.runtime.numpy_ops.resize_matrix): output o reads input
 * coordinate (o + 0.5) * in / out - 0.5; bilinear clamps it to [0, in - 1],
 * nearest takes floor((o + 0.5) * in / out).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"

/* Fill a (rows x cols) row-major matrix: A (out x in), or A^T with `transpose`. */
static void fill_resize_matrix(float *m, int in, int out, fx_resize_kind kind, int transpose) {
    const int cols = transpose ? out : in;
    memset(m, 0, (size_t)in * out * sizeof *m);
    const double ratio = (double)in / out;
    for (int o = 0; o < out; ++o) {
        int i0, i1;
        double w1;
        if (kind == FX_RESIZE_NEAREST) {
            i0 = i1 = (int)floor((o + 0.5) * ratio);
            if (i0 > in - 1) i0 = i1 = in - 1;
            w1 = 0.0;
        } else {
            double s = (o + 0.5) * ratio - 0.5;
            s = s < 0 ? 0 : (s > in - 1 ? in - 1 : s);
            i0 = (int)floor(s);
            i1 = i0 + 1 < in ? i0 + 1 : in - 1;
            w1 = s - i0;
        }
        const int r0 = transpose ? i0 : o, c0 = transpose ? o : i0;
        const int r1 = transpose ? i1 : o, c1 = transpose ? o : i1;
        m[(size_t)r0 * cols + c0] += (float)(1.0 - w1);
        m[(size_t)r1 * cols + c1] += (float)w1;
    }
}

/* A memory object of the plan's activation type holding the (batch-1, rows,
 * cols) interpolation matrix; filled once, here. */
static fx_status resize_matrix(fx_plan *plan, int in, int out, fx_resize_kind kind, int transpose,
                               dnnl_memory_t *mem) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t f32_md = NULL, act_md = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t f32 = NULL;
    void *data = NULL;
    dnnl_dims_t dims = {1, transpose ? in : out, transpose ? out : in};
    FX_DNNL(dnnl_memory_desc_create_with_tag(&f32_md, 3, dims, dnnl_f32, dnnl_abc));
    FX_TRY(fxi_plan_new_memory(plan, f32_md, NULL, &f32));
    FX_DNNL(dnnl_memory_get_data_handle(f32, &data));
    fill_resize_matrix(data, in, out, kind, transpose);
    *mem = f32;
    if (fxi_plan_act_type(plan) == dnnl_f32) goto cleanup;
    /* bf16 activations: the matmuls want the matrix in bf16 too */
    FX_DNNL(dnnl_memory_desc_create_with_tag(&act_md, 3, dims, fxi_plan_act_type(plan), dnnl_abc));
    FX_TRY(fxi_plan_new_memory(plan, act_md, NULL, mem));
    FX_DNNL(dnnl_reorder_primitive_desc_create(&pd, f32_md, plan->engine, act_md, plan->engine, NULL));
    FX_DNNL(dnnl_primitive_create(&prim, pd));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, f32}, {DNNL_ARG_TO, *mem}};
    FX_DNNL(dnnl_primitive_execute(prim, plan->stream, 2, args));
    FX_DNNL(dnnl_stream_wait(plan->stream));
cleanup:
    dnnl_memory_desc_destroy(f32_md);
    dnnl_memory_desc_destroy(act_md);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_destroy(prim);
    return st;
}

/* A view of `mem`'s buffer as a plain (d0, d1[, d2]) tensor of the plan's type. */
static fx_status view(fx_plan *plan, dnnl_memory_t mem, int nd, dnnl_dim_t d0, dnnl_dim_t d1, dnnl_dim_t d2,
                      dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t md = NULL;
    void *handle = NULL;
    dnnl_dims_t dims = {d0, d1, d2};
    FX_DNNL(dnnl_memory_desc_create_with_tag(&md, nd, dims, fxi_plan_act_type(plan), nd == 2 ? dnnl_ab : dnnl_abc));
    FX_DNNL(dnnl_memory_get_data_handle(mem, &handle));
    FX_TRY(fxi_plan_new_memory(plan, md, handle, out));
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}

/* Append dst = src x weights (3-D or 2-D plain tensors; src may broadcast its batch). */
static fx_status matmul(fx_plan *plan, dnnl_memory_t src, dnnl_memory_t weights, dnnl_memory_t dst) {
    fx_status st = FX_STATUS_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    FX_TRY(fxi_plan_new_attr(&attr));
    FX_DNNL(dnnl_matmul_primitive_desc_create(&pd, plan->engine, fxi_plan_md_of(src), fxi_plan_md_of(weights), NULL,
                                              fxi_plan_md_of(dst), attr));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
    FX_TRY(fxi_plan_add_step(plan, pd, args, 3, NULL));
cleanup:
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* The height pass shared by both layouts: `t`, read as (batches, in_h, cols),
 * is multiplied by A_h (or, transposed, by the forward matrix's transpose);
 * *y receives (batches, out_h, cols). */
static fx_status along_height(fx_plan *plan, dnnl_memory_t t, dnnl_dim_t batches, int in_h, dnnl_dim_t cols,
                              int out_h, fx_resize_kind kind, int transposed, dnnl_memory_t *y) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_t t3, ah;
    dnnl_memory_desc_t md = NULL;
    dnnl_dims_t y_dims = {batches, out_h, cols};
    FX_TRY(view(plan, t, 3, batches, in_h, cols, &t3));
    FX_TRY(resize_matrix(plan, transposed ? out_h : in_h, transposed ? in_h : out_h, kind, transposed, &ah));
    FX_DNNL(dnnl_memory_desc_create_with_tag(&md, 3, y_dims, fxi_plan_act_type(plan), dnnl_abc));
    FX_TRY(fxi_plan_new_memory(plan, md, NULL, y));
    FX_TRY(matmul(plan, ah, t3, *y));
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}

/* Resize the channels-last `x`, (n, in_h, in_w, c), to (n, out_h, out_w, c):
 * T = A_w X per image row, then Y = A_h T per image, where T is read as
 * (n, in_h, out_w * c). Both products broadcast the small matrix over the
 * batch, and neither needs a layout change. With `transposed` the matrices
 * are the transposes of the forward pass whose output size is (in_h, in_w):
 * the backward pass dX = A_h^T dY A_w. */
static fx_status resample(fx_plan *plan, dnnl_memory_t x, dnnl_dim_t n, dnnl_dim_t c, int in_h, int in_w, int out_h,
                          int out_w, fx_resize_kind kind, int transposed, dnnl_memory_t *y) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_t x3, aw, t;
    dnnl_memory_desc_t md = NULL;
    dnnl_dims_t t_dims = {n * in_h, out_w, c};
    FX_TRY(view(plan, x, 3, n * in_h, in_w, c, &x3));
    /* forward: A (out x in) of the size pair (in, out); backward: the forward
       matrix of (out, in), transposed, which is again out x in here */
    FX_TRY(resize_matrix(plan, transposed ? out_w : in_w, transposed ? in_w : out_w, kind, transposed, &aw));
    FX_DNNL(dnnl_memory_desc_create_with_tag(&md, 3, t_dims, fxi_plan_act_type(plan), dnnl_abc));
    FX_TRY(fxi_plan_new_memory(plan, md, NULL, &t));
    FX_TRY(matmul(plan, aw, x3, t));
    FX_TRY(along_height(plan, t, n, in_h, out_w * c, out_h, kind, transposed, y));
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}

/* The same for a plain NCHW `x`, (planes = n * c, in_h, in_w): one large
 * product along the width (X as (planes * in_h, in_w) times A_w^T), then the
 * height as above. Used for few channels (an RGB output), where the
 * channels-last products would have only c columns. */
static fx_status resample_planar(fx_plan *plan, dnnl_memory_t x, dnnl_dim_t planes, int in_h, int in_w, int out_h,
                                 int out_w, fx_resize_kind kind, int transposed, dnnl_memory_t *y) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_t x2, aw, aw2, t;
    dnnl_memory_desc_t md = NULL;
    dnnl_dims_t t_dims = {planes * in_h, out_w};
    FX_TRY(view(plan, x, 2, planes * in_h, in_w, 0, &x2));
    /* the transpose of the matrix resample() uses, as a 2-D right operand */
    FX_TRY(resize_matrix(plan, transposed ? out_w : in_w, transposed ? in_w : out_w, kind, !transposed, &aw));
    FX_TRY(view(plan, aw, 2, in_w, out_w, 0, &aw2));
    FX_DNNL(dnnl_memory_desc_create_with_tag(&md, 2, t_dims, fxi_plan_act_type(plan), dnnl_ab));
    FX_TRY(fxi_plan_new_memory(plan, md, NULL, &t));
    FX_TRY(matmul(plan, x2, aw2, t));
    FX_TRY(along_height(plan, t, planes, in_h, out_w, out_h, kind, transposed, y));
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}

/* Below this many channels a resize runs planar (NCHW): measured 3x faster
   than channels-last for the decoder's RGB layer (bench_decoder_training.py). */
#define FX_RESIZE_NHWC_MIN_CHANNELS 8

/* Resize `x` (layout `tag`) of node `in_node`'s shape to `out_node`'s;
   *out is a view of the result in `tag` with the output node's dims. */
static fx_status resize_steps(fx_plan *plan, const fx_node *in_node, const fx_node *out_node, dnnl_memory_t x,
                              fx_resize_kind kind, int transposed, dnnl_format_tag_t tag, dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t md = NULL;
    dnnl_memory_t y;
    void *handle = NULL;
    if (tag == dnnl_nhwc)
        FX_TRY(resample(plan, x, plan->batch, in_node->c, in_node->h, in_node->w, out_node->h, out_node->w, kind,
                        transposed, &y));
    else
        FX_TRY(resample_planar(plan, x, (dnnl_dim_t)plan->batch * in_node->c, in_node->h, in_node->w, out_node->h,
                               out_node->w, kind, transposed, &y));
    FX_TRY(fxi_plan_node_md(plan, out_node, tag, dnnl_nc, &md));
    FX_DNNL(dnnl_memory_get_data_handle(y, &handle));
    FX_TRY(fxi_plan_new_memory(plan, md, handle, out));
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}

fx_status fxi_forward_resize(fx_plan *plan, const fx_net *net, int id) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[id], *in = &net->nodes[n->inputs[0]];
    const dnnl_format_tag_t tag = n->c < FX_RESIZE_NHWC_MIN_CHANNELS ? dnnl_nchw : dnnl_nhwc;
    dnnl_memory_desc_t md = NULL;
    dnnl_memory_t src;
    /* (a reshaped dense output arrives in NCHW, a convolution's in NHWC:
       reordered once if the layout differs) */
    FX_TRY(fxi_plan_node_md(plan, in, tag, dnnl_nc, &md));
    FX_TRY(fxi_plan_as_layout(plan, plan->node_mem[n->inputs[0]], md, &src));
    FX_TRY(resize_steps(plan, in, n, src, n->resize, 0, tag, &plan->node_mem[id]));
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}

/* The input's gradient, computed in plain layout, is handed to the backward
   pass (net_backward.c), which copies or adds it into the input's gradient. */
fx_status fxi_backward_resize(fx_backward *b, int id) {
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = b->plan;
    const fx_node *n = &b->net->nodes[id], *in = &b->net->nodes[n->inputs[0]];
    const dnnl_format_tag_t tag = n->c < FX_RESIZE_NHWC_MIN_CHANNELS ? dnnl_nchw : dnnl_nhwc;
    dnnl_memory_desc_t md = NULL;
    dnnl_memory_t dy, grad_input;
    FX_TRY(fxi_plan_node_md(plan, n, tag, dnnl_nc, &md));
    FX_TRY(fxi_plan_as_layout(plan, plan->diff[id], md, &dy));
    FX_TRY(resize_steps(plan, n, in, dy, n->resize, 1, tag, &grad_input));
    FX_TRY(fxi_backward_deliver(b, n->inputs[0], grad_input));
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}
