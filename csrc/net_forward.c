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
    st = plan_for(net, n, FX_TRAIN_NONE, &plan);
    if (!st) st = fx_plan_run(net, plan, pixels, out);
    pthread_mutex_unlock(&net->lock);
    return st;
}

/* Forward and backward on a training plan of `mode`; with parameter
   gradients, copy them into the caller's buffers too. */
static fx_status run_training(fx_net *net, int mode, int n, const float *pixels, const float *grad_output, float *out,
                              float *grad_pixels, float **weight_grads, float **bias_grads) {
    fx_status st = check_run(net, n);
    if (st) return st;
    if (!pixels || !grad_output || !out || !grad_pixels)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "pixels, grad_output, out and grad_pixels must not be NULL");
    pthread_mutex_lock(&net->lock);
    fx_plan *plan = NULL;
    st = plan_for(net, n, mode, &plan);
    if (!st) st = fx_plan_run(net, plan, pixels, out);
    if (!st) st = fx_plan_run_backward(net, plan, grad_output, grad_pixels);
    if (!st && mode == FX_TRAIN_PARAMETERS) st = fx_plan_copy_parameter_gradients(net, plan, weight_grads, bias_grads);
    pthread_mutex_unlock(&net->lock);
    return st;
}

fx_status fx_net_train_forward(fx_net *net, int parameters, int n, const float *pixels, float *out) {
    fx_status st = check_run(net, n);
    if (st) return st;
    if (!pixels || !out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "pixels and out must not be NULL");
    pthread_mutex_lock(&net->lock);
    fx_plan *plan = NULL;
    net->pending = NULL;
    st = plan_for(net, n, parameters ? FX_TRAIN_PARAMETERS : FX_TRAIN_INPUT, &plan);
    if (!st) st = fx_plan_run(net, plan, pixels, out);
    if (!st) {
        net->pending = plan;
        net->pending_clock = net->clock;
    }
    pthread_mutex_unlock(&net->lock);
    return st;
}

fx_status fx_net_train_backward(fx_net *net, int n, const float *grad_output, float *grad_pixels,
                                float **weight_grads, float **bias_grads) {
    if (!net || !grad_output || !grad_pixels)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "net, grad_output and grad_pixels must not be NULL");
    pthread_mutex_lock(&net->lock);
    fx_status st = FX_STATUS_OK;
    fx_plan *plan = net->pending;
    /* every plan lookup advances the clock: an unchanged clock means no other
       run has touched the activations since the forward pass */
    if (!plan || net->pending_clock != net->clock) {
        st = fx_fail(FX_STATUS_INVALID_ARGUMENT,
                     "no forward pass to go back through: call train_forward first (another run of this "
                     "net since then overwrote its activations)");
    } else if (fx_plan_batch(plan) != n) {
        st = fx_fail(FX_STATUS_INVALID_ARGUMENT, "the forward pass had %d images, the gradient has %d",
                     fx_plan_batch(plan), n);
    } else {
        st = fx_plan_run_backward(net, plan, grad_output, grad_pixels);
        if (!st && fx_plan_training(plan) == FX_TRAIN_PARAMETERS)
            st = fx_plan_copy_parameter_gradients(net, plan, weight_grads, bias_grads);
    }
    net->pending = NULL;
    pthread_mutex_unlock(&net->lock);
    return st;
}

fx_status fx_net_input_gradient(fx_net *net, int n, const float *pixels, const float *grad_output, float *out,
                                float *grad_pixels) {
    return run_training(net, FX_TRAIN_INPUT, n, pixels, grad_output, out, grad_pixels, NULL, NULL);
}

fx_status fx_net_parameter_gradients(fx_net *net, int n, const float *pixels, const float *grad_output, float *out,
                                     float *grad_pixels, float **weight_grads, float **bias_grads) {
    return run_training(net, FX_TRAIN_PARAMETERS, n, pixels, grad_output, out, grad_pixels, weight_grads, bias_grads);
}

/* Drop every cached plan (their primitives depend on the math mode). Lock held. */
static void drop_plans(fx_net *net) {
    for (int i = 0; i < FX_PLAN_CACHE; ++i) {
        fx_plan_destroy(net->plans[i]);
        net->plans[i] = NULL;
    }
    net->pending = NULL;
}

fx_status fx_net_parameter_sizes(const fx_net *net, int node, size_t *weight_count, size_t *bias_count) {
    if (!net || node < 1 || node >= net->n_nodes || !weight_count || !bias_count)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "node %d is not a layer", node);
    const fx_node *n = &net->nodes[node];
    const fx_node *in = &net->nodes[n->inputs[0]];
    *weight_count = *bias_count = 0;
    if (n->kind == FX_LAYER_CONV)
        *weight_count = (size_t)n->c * (size_t)(in->c / n->groups) * n->kernel[0] * n->kernel[1];
    if (n->kind == FX_LAYER_DENSE) *weight_count = (size_t)n->c * in->c * in->h * in->w;
    if ((n->kind == FX_LAYER_CONV || n->kind == FX_LAYER_DENSE) && n->bias) *bias_count = (size_t)n->c;
    return FX_STATUS_OK;
}

fx_status fx_net_set_parameters(fx_net *net, int node, const float *weight, const float *bias) {
    size_t wc = 0, bc = 0;
    fx_status st = fx_net_parameter_sizes(net, node, &wc, &bc);
    if (st) return st;
    if (!wc)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "node %d (%s) has no trainable weights", node,
                       fx_layer_kind_name(net->nodes[node].kind));
    if (!weight || (bc && !bias)) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "weight (and bias) must not be NULL");
    fx_node *n = &net->nodes[node];
    pthread_mutex_lock(&net->lock);
    memcpy(n->weight, weight, wc * sizeof(float));
    if (bc) memcpy(n->bias, bias, bc * sizeof(float));
    net->pending = NULL; /* a pending backward pass would mix old activations with new weights */
    /* the plans read these arrays directly or through reordered copies */
    for (int i = 0; i < FX_PLAN_CACHE && !st; ++i) {
        if (!net->plans[i]) continue;
        st = fx_plan_refresh_parameters(net->plans[i], n->weight);
        if (!st && bc) st = fx_plan_refresh_parameters(net->plans[i], n->bias);
    }
    if (st) drop_plans(net); /* stale copies must not survive a failed refresh */
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
    st = plan_for(net, 1, FX_TRAIN_INPUT, &one);
    if (!st) st = fx_plan_run(net, one, pixels, out);
    if (!st) st = plan_for(net, n, FX_TRAIN_INPUT, &many); /* `one` was used last: not evicted here */
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
    st = plan_for(net, batch, FX_TRAIN_NONE, &plan);
    if (!st) *steps = fx_plan_steps(plan);
    pthread_mutex_unlock(&net->lock);
    return st;
}

fx_status fx_net_set_math_mode(fx_net *net, fx_math_mode mode) {
    if (!net) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "net must not be NULL");
    if (mode != FX_MATH_FP32 && mode != FX_MATH_BF16 && mode != FX_MATH_INT8)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "unknown math mode %d", (int)mode);
    pthread_mutex_lock(&net->lock);
    if (net->math != mode) {
        drop_plans(net);
        net->math = mode;
    }
    pthread_mutex_unlock(&net->lock);
    return FX_STATUS_OK;
}
