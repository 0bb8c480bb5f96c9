/*
 * net_forward.c - running a finalized network: plan lookup and caching.
 *
 * Plans are cached per batch size (least recently used is evicted), so a
 * stream of equal-sized chunks builds its primitives once. The net's lock
 * makes a net safe to share between threads.
 */
#include <stdlib.h>
#include <string.h>

#include "fx_internal.h"

/* The plan for `batch`, built on first use. Call with the lock held. */
static fx_status plan_for(fx_net *net, int batch, int training, fx_plan **out) {
    int victim = 0;
    net->clock++;
    for (int i = 0; i < FX_PLAN_CACHE; ++i) {
        if (net->plans[i] && fx_plan_batch(net->plans[i]) == batch && fx_plan_training(net->plans[i]) == training) {
            net->plan_used[i] = net->clock;
            *out = net->plans[i];
            return FX_STATUS_OK;
        }
        /* an empty slot wins; otherwise the least recently used plan goes */
        if (!net->plans[i] || (net->plans[victim] && net->plan_used[i] < net->plan_used[victim]))
            victim = i;
    }
    fx_plan *plan = NULL;
    fx_status st = fx_plan_build(net, batch, training, &plan);
    if (st) return st;
    fx_plan_destroy(net->plans[victim]);
    net->plans[victim] = plan;
    net->plan_used[victim] = net->clock;
    *out = plan;
    return FX_STATUS_OK;
}

static fx_status check_run(const fx_net *net, int n) {
    if (!net) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "net must not be NULL");
    if (!net->finalized) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "the network is not finalized");
    if (n < 1) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "batch size must be >= 1, got %d", n);
    return FX_STATUS_OK;
}

fx_status fx_net_forward(fx_net *net, int n, const float *pixels, float *out) {
    fx_status st = check_run(net, n);
    if (st) return st;
    if (!pixels || !out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "pixels and out must not be NULL");
    pthread_mutex_lock(&net->lock);
    fx_plan *plan = NULL;
    st = plan_for(net, n, 0, &plan);
    if (!st) st = fx_plan_run(net, plan, pixels, out);
    pthread_mutex_unlock(&net->lock);
    return st;
}

fx_status fx_net_input_gradient(fx_net *net, int n, const float *pixels, const float *grad_output,
                                float *out, float *grad_pixels) {
    fx_status st = check_run(net, n);
    if (st) return st;
    if (!pixels || !grad_output || !out || !grad_pixels)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "pixels, grad_output, out and grad_pixels must not be NULL");
    pthread_mutex_lock(&net->lock);
    fx_plan *plan = NULL;
    st = plan_for(net, n, 1, &plan);
    if (!st) st = fx_plan_run(net, plan, pixels, out);
    if (!st) st = fx_plan_run_backward(net, plan, grad_output, grad_pixels);
    pthread_mutex_unlock(&net->lock);
    return st;
}

fx_status fx_net_input_gradient_shared(fx_net *net, int n, const float *pixels, const float *grad_output,
                                       float *out, float *grad_pixels) {
    fx_status st = check_run(net, n);
    if (st) return st;
    if (!pixels || !grad_output || !out || !grad_pixels)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "pixels, grad_output, out and grad_pixels must not be NULL");
    pthread_mutex_lock(&net->lock);
    fx_plan *one = NULL, *many = NULL;
    int ok = 0;
    st = plan_for(net, 1, 1, &one);
    if (!st) st = fx_plan_run(net, one, pixels, out);
    if (!st) st = plan_for(net, n, 1, &many); /* `one` was used last, so it is not evicted here */
    if (!st) st = fx_plans_replicate_forward(net, one, many, &ok);
    if (!st && !ok) { /* a layout without the batch outermost: run the batch forward instead */
        const fx_node *in = &net->nodes[0];
        const size_t image = (size_t)in->h * in->w * in->c;
        float *copies = malloc((size_t)n * image * sizeof(float));
        float *outs = NULL;
        int oc, oh, ow;
        fx_net_output_shape(net, &oc, &oh, &ow);
        outs = malloc((size_t)n * oc * oh * ow * sizeof(float));
        if (!copies || !outs) st = fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate %d image copies", n);
        for (int k = 0; !st && k < n; ++k) memcpy(copies + k * image, pixels, image * sizeof(float));
        if (!st) st = fx_plan_run(net, many, copies, outs);
        free(copies);
        free(outs);
    }
    if (!st) st = fx_plan_run_backward(net, many, grad_output, grad_pixels);
    pthread_mutex_unlock(&net->lock);
    return st;
}

fx_status fx_net_step_count(fx_net *net, int batch, int *steps) {
    fx_status st = check_run(net, batch);
    if (st) return st;
    if (!steps) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "steps must not be NULL");
    pthread_mutex_lock(&net->lock);
    fx_plan *plan = NULL;
    st = plan_for(net, batch, 0, &plan);
    if (!st) *steps = fx_plan_steps(plan);
    pthread_mutex_unlock(&net->lock);
    return st;
}

fx_status fx_net_set_math_mode(fx_net *net, fx_math_mode mode) {
    if (!net) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "net must not be NULL");
    if (mode != FX_MATH_FP32 && mode != FX_MATH_BF16)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "unknown math mode %d", (int)mode);
    pthread_mutex_lock(&net->lock);
    if (net->math != mode) {
        for (int i = 0; i < FX_PLAN_CACHE; ++i) {
            fx_plan_destroy(net->plans[i]);
            net->plans[i] = NULL;
        }
        net->math = mode;
    }
    pthread_mutex_unlock(&net->lock);
    return FX_STATUS_OK;
}
