/*
 * net_int8.c - INT8 convolutions for perturbation passes (FX_MATH_INT8).
 *
 * In the int8 mode every convolution with at least FX_INT8_MIN_CHANNELS
 * input channels runs as a oneDNN int8 convolution: its weights quantised
 * symmetrically per output channel to s8 (fx_quantize_per_channel), its input
 * quantised per tensor with a scale calibrated on real images
 * (fx_net_calibrate_int8: the maximum absolute activation of an FP32 pass),
 * u8 when the calibration saw no negative value, s8 otherwise. The quantising
 * reorder is a plan step of its own; the convolution writes float32 (bias,
 * ReLU and residual-add post-ops unchanged), so pooling, sums, the first
 * layer and dense layers stay FP32 and no other builder changes.
 *
 * Without VNNI (AVX2), oneDNN's u8 x s8 kernels add pairs of products in
 * 16 bits with saturation (vpmaddubsw): weights of u8-input layers are then
 * limited to [-63, 63] so 2 * 255 * 63 fits; s8-input layers keep [-127, 127],
 * which oneDNN itself rounds to even values (it shifts their input to u8 and
 * halves the weights), so both kinds have about 7 bits of weight there.
 *
 * Activation scales live in the net (one float per convolution), and each
 * plan's scale memory points at them, so recalibrating on the next pair
 * costs one FP32 pass and no rebuild, unless a layer's sign changes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan_internal.h"

/* Convolutions with fewer input channels (an RGB first layer) stay FP32. */
#define FX_INT8_MIN_CHANNELS 8

fx_status fx_quantize_per_channel(const float *w, int rows, size_t per_row, int levels, signed char *q,
                                  float *scales) {
    if (!w || !q || !scales || rows < 1 || per_row < 1)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "quantize: need weights, outputs and a non-empty shape");
    if (levels < 1 || levels > 127)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "quantize: levels must be in [1, 127], got %d", levels);
    for (int o = 0; o < rows; ++o) {
        const float *row = w + (size_t)o * per_row;
        float m = 0.0f;
        for (size_t k = 0; k < per_row; ++k) {
            float a = fabsf(row[k]);
            if (!(a <= 3.4e38f)) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "quantize: non-finite weight in row %d", o);
            if (a > m) m = a;
        }
        /* an all-zero row: any scale works; 1 keeps the dequantised zeros exact */
        const float scale = m > 0.0f ? m / (float)levels : 1.0f;
        scales[o] = scale;
        for (size_t k = 0; k < per_row; ++k) {
            float v = nearbyintf(row[k] / scale);
            if (v > levels) v = (float)levels;
            if (v < -levels) v = (float)-levels;
            q[(size_t)o * per_row + k] = (signed char)v;
        }
    }
    return FX_STATUS_OK;
}

int fxi_int8_conv(const fx_net *net, int head) {
    const fx_node *n = &net->nodes[head];
    return n->kind == FX_LAYER_CONV && net->nodes[n->inputs[0]].c >= FX_INT8_MIN_CHANNELS;
}

static int has_vnni(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx2_vnni || isa == dnnl_cpu_isa_avx2_vnni_2 ||
           (isa & dnnl_cpu_isa_avx512_core_vnni) == dnnl_cpu_isa_avx512_core_vnni;
}

dnnl_data_type_t fxi_int8_src_type(const fx_net *net, int head) {
    return net->int8_signed[head] ? dnnl_s8 : dnnl_u8;
}

fx_status fxi_int8_check(const fx_net *net) {
    if (!net->int8_calibrated)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                       "int8 mode needs activation scales: calibrate the net on images first (calibrate_int8)");
    return FX_STATUS_OK;
}

fx_status fxi_int8_attr(dnnl_primitive_attr_t attr, int grouped) {
    fx_status st = FX_STATUS_OK;
    FX_DNNL(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_SRC, 0));
    FX_DNNL(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_WEIGHTS, grouped ? 3 : 1));
cleanup:
    return st;
}

/* A plan-owned memory of `count` floats, viewing `handle` or with its own copy of `values`. */
static fx_status scale_memory(fx_plan *plan, int count, float *handle, const float *values, dnnl_memory_t *out) {
    fx_status st = FX_STATUS_OK;
    dnnl_memory_desc_t md = NULL;
    dnnl_dims_t dims = {count};
    FX_DNNL(dnnl_memory_desc_create_with_tag(&md, 1, dims, dnnl_f32, dnnl_a));
    FX_TRY(fxi_plan_new_memory(plan, md, handle, out));
    if (values) {
        void *p = NULL;
        FX_DNNL(dnnl_memory_get_data_handle(*out, &p));
        memcpy(p, values, (size_t)count * sizeof(float));
    }
cleanup:
    dnnl_memory_desc_destroy(md);
    return st;
}

fx_status fxi_int8_input(fx_plan *plan, const fx_net *net, int head, dnnl_memory_t src,
                         const_dnnl_memory_desc_t want, dnnl_memory_t *out, dnnl_memory_t *scale) {
    fx_status st = FX_STATUS_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t dst = NULL;
    /* the scale is read at every run from the net, so recalibration needs no rebuild */
    FX_TRY(scale_memory(plan, 1, &net->int8_scale[head], NULL, scale));
    FX_TRY(fxi_plan_new_memory(plan, want, NULL, &dst));
    FX_TRY(fxi_plan_new_attr(&attr));
    FX_DNNL(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_DST, 0));
    FX_DNNL(dnnl_reorder_primitive_desc_create(&pd, fxi_plan_md_of(src), plan->engine, want, plan->engine, attr));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}, {DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST, *scale}};
    FX_TRY(fxi_plan_add_step(plan, pd, args, 3, NULL));
    *out = dst;
cleanup:
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

fx_status fxi_int8_weights(fx_plan *plan, const fx_net *net, int head, int nd, const dnnl_dims_t dims,
                           const_dnnl_memory_desc_t want, dnnl_memory_t *out, dnnl_memory_t *scale) {
    fx_status st = FX_STATUS_OK;
    const fx_node *n = &net->nodes[head];
    size_t count = 1;
    for (int i = 0; i < nd; ++i) count *= (size_t)dims[i];
    const size_t per_row = count / (size_t)n->c;
    signed char *q = malloc(count);
    float *scales = malloc((size_t)n->c * sizeof(float));
    dnnl_memory_desc_t md = NULL;
    dnnl_memory_t plain = NULL, dst = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    if (!q || !scales) {
        st = fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate int8 weights of layer %d", head);
        goto cleanup;
    }
    const int levels = (!net->int8_signed[head] && !has_vnni()) ? 63 : 127;
    FX_TRY(fx_quantize_per_channel(n->weight, n->c, per_row, levels, q, scales));
    FX_TRY(scale_memory(plan, n->c, NULL, scales, scale));
    /* plain s8 weights, reordered once into the primitive's layout (which may
       carry oneDNN's compensation for s8 inputs, computed by the reorder) */
    FX_DNNL(dnnl_memory_desc_create_with_tag(&md, nd, dims, dnnl_s8, fxi_plan_weight_tag(nd)));
    FX_DNNL(dnnl_memory_create(&plain, md, plan->engine, q));
    FX_TRY(fxi_plan_new_memory(plan, want, NULL, &dst));
    FX_DNNL(dnnl_reorder_primitive_desc_create(&pd, md, plan->engine, want, plan->engine, NULL));
    FX_DNNL(dnnl_primitive_create(&prim, pd));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, dst}};
    FX_DNNL(dnnl_primitive_execute(prim, plan->stream, 2, args));
    FX_DNNL(dnnl_stream_wait(plan->stream));
    *out = dst;
cleanup:
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(plain);
    dnnl_memory_desc_destroy(md);
    free(q);
    free(scales);
    return st;
}

/* Drop every cached plan (their primitives depend on the layers' input types). Lock held. */
static void drop_plans(fx_net *net) {
    for (int i = 0; i < FX_PLAN_CACHE; ++i) {
        fx_plan_destroy(net->plans[i]);
        net->plans[i] = NULL;
    }
    net->pending = NULL;
}

fx_status fx_net_calibrate_int8(fx_net *net, int n, const float *pixels) {
    fx_status st = FX_STATUS_OK;
    float *out = NULL;
    if (!net || !pixels) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "net and pixels must not be NULL");
    if (!net->finalized) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "the network is not finalized");
    if (n < 1) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "calibration needs at least one image, got %d", n);
    int oc, oh, ow;
    FX_TRY(fx_net_output_shape(net, &oc, &oh, &ow));
    out = malloc((size_t)n * oc * oh * ow * sizeof(float));
    if (!out) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate the calibration output");
    pthread_mutex_lock(&net->lock);
    if (!net->int8_scale) {
        net->int8_scale = calloc((size_t)net->n_nodes, sizeof(float));
        net->int8_signed = calloc((size_t)net->n_nodes, 1);
        if (!net->int8_scale || !net->int8_signed) {
            free(net->int8_scale);
            free(net->int8_signed);
            net->int8_scale = NULL;
            net->int8_signed = NULL;
            st = fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate activation scales");
            goto unlock;
        }
    }
    /* an FP32 plan of this batch size, kept for the next calibration */
    if (net->calib_plan && fx_plan_batch(net->calib_plan) != n) {
        fx_plan_destroy(net->calib_plan);
        net->calib_plan = NULL;
    }
    if (!net->calib_plan) {
        fx_math_mode math = net->math;
        net->math = FX_MATH_FP32;
        st = fx_plan_build(net, n, FX_TRAIN_NONE, &net->calib_plan);
        net->math = math;
        if (st) goto unlock;
    }
    fx_plan *plan = net->calib_plan;
    st = fx_plan_run(net, plan, pixels, out);
    if (st) goto unlock;
    int changed = 0;
    for (int j = 1; j < net->n_nodes; ++j) {
        if (!fxi_int8_conv(net, j) || net->nodes[j].folded) continue;
        const int in = net->nodes[j].inputs[0];
        const float *a = NULL;
        dnnl_status_t s = dnnl_memory_get_data_handle(plan->node_mem[in], (void **)&a);
        if (s != dnnl_success) {
            st = fx_fail_dnnl(s, "memory_get_data_handle", __FILE__, __LINE__);
            goto unlock;
        }
        const size_t count = dnnl_memory_desc_get_size(fxi_plan_md_of(plan->node_mem[in])) / sizeof(float);
        float lo = 0.0f, hi = 0.0f;
        for (size_t k = 0; k < count; ++k) {
            if (a[k] < lo) lo = a[k];
            if (a[k] > hi) hi = a[k];
        }
        if (!(hi - lo <= 3.4e38f)) {
            st = fx_fail(FX_STATUS_INVALID_ARGUMENT, "calibration: non-finite activations at layer %d", in);
            goto unlock;
        }
        const char is_signed = lo < 0.0f;
        const float m = fmaxf(hi, -lo);
        if (is_signed != net->int8_signed[j]) changed = 1;
        net->int8_signed[j] = is_signed;
        /* dequantisation factor: real value = scale * integer */
        net->int8_scale[j] = m > 0.0f ? m / (is_signed ? 127.0f : 255.0f) : 1.0f;
    }
    if (changed || !net->int8_calibrated) drop_plans(net);
    net->int8_calibrated = 1;
unlock:
    pthread_mutex_unlock(&net->lock);
cleanup:
    free(out);
    return st;
}
