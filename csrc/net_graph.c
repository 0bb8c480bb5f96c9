/*
 * net_graph.c - building a network graph: nodes, shapes, argument checks.
 *
 * Everything here is plain bookkeeping; oneDNN is not touched until a batch
 * size is first run (net_plan.c). Each add function validates its arguments
 * fully, so a finalized graph is always well-formed.
 */
#include <stdlib.h>
#include <string.h>

#include "fx_internal.h"

#define FX_MAX_DIM (1 << 16)

fx_status fx_net_create(fx_net **out, int channels, int height, int width) {
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "net pointer must not be NULL");
    *out = NULL;
    if (channels < 1 || height < 1 || width < 1 || channels > FX_MAX_DIM || height > FX_MAX_DIM ||
        width > FX_MAX_DIM)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "input shape must be positive, got %dx%dx%d",
                       channels, height, width);
    fx_net *net = calloc(1, sizeof *net);
    if (!net) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate a network");
    net->cap_nodes = 64;
    net->nodes = calloc((size_t)net->cap_nodes, sizeof *net->nodes);
    net->input_mean = calloc((size_t)channels, sizeof(float));
    net->input_scale = malloc((size_t)channels * sizeof(float));
    if (!net->nodes || !net->input_mean || !net->input_scale) {
        free(net->nodes);
        free(net->input_mean);
        free(net->input_scale);
        free(net);
        return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate a network");
    }
    for (int k = 0; k < channels; ++k) net->input_scale[k] = 1.0f;
    fx_node *input = &net->nodes[0];
    input->kind = FX_LAYER_INPUT;
    input->c = channels;
    input->h = height;
    input->w = width;
    net->n_nodes = 1;
    net->output = -1;
    pthread_mutex_init(&net->lock, NULL);
    *out = net;
    return FX_STATUS_OK;
}

void fx_net_destroy(fx_net *net) {
    if (!net) return;
    for (int i = 0; i < FX_PLAN_CACHE; ++i) fx_plan_destroy(net->plans[i]);
    fx_plan_destroy(net->calib_plan);
    free(net->int8_scale);
    free(net->int8_signed);
    if (net->stream) dnnl_stream_destroy(net->stream);
    for (int i = 0; i < net->n_nodes; ++i) {
        free(net->nodes[i].weight);
        free(net->nodes[i].bias);
    }
    free(net->nodes);
    free(net->input_mean);
    free(net->input_scale);
    pthread_mutex_destroy(&net->lock);
    free(net);
}

fx_status fx_net_set_input_normalization(fx_net *net, const float *mean, const float *scale) {
    if (!net || !mean || !scale)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "net, mean and scale must not be NULL");
    if (net->finalized) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "the network is finalized");
    memcpy(net->input_mean, mean, (size_t)net->nodes[0].c * sizeof(float));
    memcpy(net->input_scale, scale, (size_t)net->nodes[0].c * sizeof(float));
    return FX_STATUS_OK;
}

/* Check that `input` is an existing node of an open graph; return it. */
static fx_status check_open(const fx_net *net, int input, const char *layer) {
    if (!net) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "net must not be NULL");
    if (net->finalized)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "cannot add %s: the network is finalized", layer);
    if (input < 0 || input >= net->n_nodes)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "%s input %d is not a node (the net has %d)",
                       layer, input, net->n_nodes);
    return FX_STATUS_OK;
}

/* Append a node copying the input's shape; returns NULL when out of memory. */
static fx_node *append(fx_net *net, fx_layer_kind kind, int input) {
    if (net->n_nodes == net->cap_nodes) {
        int cap = net->cap_nodes * 2;
        fx_node *grown = realloc(net->nodes, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        memset(grown + net->cap_nodes, 0, (size_t)(cap - net->cap_nodes) * sizeof *grown);
        net->nodes = grown;
        net->cap_nodes = cap;
    }
    const fx_node *src = &net->nodes[input];
    fx_node *node = &net->nodes[net->n_nodes];
    memset(node, 0, sizeof *node);
    node->kind = kind;
    node->inputs[0] = input;
    node->n_inputs = 1;
    node->c = src->c;
    node->h = src->h;
    node->w = src->w;
    node->flat = src->flat;
    return node;
}

static float *copy_floats(const float *src, size_t count) {
    float *dst = malloc(count * sizeof(float));
    if (dst) memcpy(dst, src, count * sizeof(float));
    return dst;
}

/* Finish an append: on allocation failure drop the node's arrays. */
static fx_status commit(fx_net *net, fx_node *node, int ok, int *out) {
    if (!ok) {
        free(node->weight);
        free(node->bias);
        node->weight = node->bias = NULL;
        return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot allocate layer parameters");
    }
    *out = net->n_nodes++;
    return FX_STATUS_OK;
}

/* A sliding window along one axis: its numbers and the input length. */
typedef struct {
    int kernel, stride, pad_begin, pad_end, dilation;
} fx_window;

/* Extent of a (dilated) kernel; callers have bounded kernel and dilation by FX_MAX_DIM. */
static long long window_extent(const fx_window *win) {
    return (long long)win->dilation * (win->kernel - 1) + 1;
}

static int window_out(int size, const fx_window *win) {
    /* check_window made this positive and bounded by size + 2 * FX_MAX_DIM */
    return (int)(((long long)size + win->pad_begin + win->pad_end - window_extent(win)) / win->stride + 1);
}

/* Refuse windows the primitives cannot run (and the shape rule could not
 * state): hostile model files reach these numbers unchanged, so every one is
 * bounded before any arithmetic on it. Padding on either side must be
 * smaller than the (dilated) kernel, so every window overlaps the input
 * (average pooling never divides by zero cells). */
static fx_status check_window(const fx_node *src, const char *layer, const fx_window *wh, const fx_window *ww) {
    if (src->flat)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "%s needs a spatial input, got a dense output",
                       layer);
    const fx_window *wins[2] = {wh, ww};
    for (int a = 0; a < 2; ++a) {
        const fx_window *w = wins[a];
        if (w->kernel < 1 || w->stride < 1 || w->pad_begin < 0 || w->pad_end < 0 || w->dilation < 1 ||
            w->kernel > FX_MAX_DIM || w->stride > FX_MAX_DIM || w->pad_begin > FX_MAX_DIM ||
            w->pad_end > FX_MAX_DIM || w->dilation > FX_MAX_DIM)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                           "%s window must have kernel, stride and dilation >= 1 and padding >= 0, got kernel "
                           "%dx%d stride %dx%d padding %dx%d (end %dx%d) dilation %dx%d",
                           layer, wh->kernel, ww->kernel, wh->stride, ww->stride, wh->pad_begin, ww->pad_begin,
                           wh->pad_end, ww->pad_end, wh->dilation, ww->dilation);
    }
    for (int a = 0; a < 2; ++a) {
        const fx_window *w = wins[a];
        const long long extent = window_extent(w);
        const int size = a == 0 ? src->h : src->w;
        if (extent > FX_MAX_DIM)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT, "%s dilated kernel spans %lld cells, more than %d", layer,
                           extent, FX_MAX_DIM);
        if (w->pad_begin >= extent || w->pad_end >= extent)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                           "%s padding %dx%d (end %dx%d) must be smaller than kernel %dx%d", layer, wh->pad_begin,
                           ww->pad_begin, wh->pad_end, ww->pad_end, wh->kernel, ww->kernel);
        if ((long long)size + w->pad_begin + w->pad_end < extent)
            return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                           "%s kernel %dx%d does not fit the %dx%d input with padding %dx%d (end %dx%d)", layer,
                           wh->kernel, ww->kernel, src->h, src->w, wh->pad_begin, ww->pad_begin, wh->pad_end,
                           ww->pad_end);
    }
    return FX_STATUS_OK;
}

static void set_window(fx_node *node, const fx_window *wh, const fx_window *ww) {
    node->kernel[0] = wh->kernel, node->kernel[1] = ww->kernel;
    node->stride[0] = wh->stride, node->stride[1] = ww->stride;
    node->padding[0] = wh->pad_begin, node->padding[1] = ww->pad_begin;
    node->padding_end[0] = wh->pad_end, node->padding_end[1] = ww->pad_end;
    node->dilation[0] = wh->dilation, node->dilation[1] = ww->dilation;
    node->h = window_out(node->h, wh);
    node->w = window_out(node->w, ww);
}

fx_status fx_net_add_conv_ex(fx_net *net, int input, int out_channels, int kh, int kw, int sh, int sw, int pt,
                             int pl, int pb, int pr, int dh, int dw, int groups, const float *weight,
                             const float *bias, int *out) {
    fx_status st = check_open(net, input, "conv");
    if (st) return st;
    if (!weight || !out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "conv weight must not be NULL");
    if (out_channels < 1 || out_channels > FX_MAX_DIM)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "conv needs >= 1 output channels, got %d",
                       out_channels);
    const int in_channels = net->nodes[input].c;
    /* groups split both channel counts evenly; the weight holds in/groups inputs per output */
    if (groups < 1 || in_channels % groups != 0 || out_channels % groups != 0)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                       "conv groups %d must be >= 1 and divide its %d input and %d output channels", groups,
                       in_channels, out_channels);
    const fx_window wh = {kh, sh, pt, pb, dh}, ww = {kw, sw, pl, pr, dw};
    st = check_window(&net->nodes[input], "conv", &wh, &ww);
    if (st) return st;
    fx_node *node = append(net, FX_LAYER_CONV, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    /* at most 2^16 * 2^16 * 2^16 * 2^16: fits size_t on the 64-bit targets */
    size_t count = (size_t)out_channels * (size_t)(in_channels / groups) * (size_t)kh * (size_t)kw;
    node->weight = copy_floats(weight, count);
    node->bias = bias ? copy_floats(bias, (size_t)out_channels) : NULL;
    node->groups = groups;
    set_window(node, &wh, &ww);
    node->c = out_channels;
    return commit(net, node, node->weight && (!bias || node->bias), out);
}

fx_status fx_net_add_conv(fx_net *net, int input, int out_channels, int kh, int kw, int sh, int sw,
                          int ph, int pw, const float *weight, const float *bias, int *out) {
    return fx_net_add_conv_ex(net, input, out_channels, kh, kw, sh, sw, ph, pw, ph, pw, 1, 1, 1, weight, bias, out);
}

fx_status fx_net_add_scale_shift(fx_net *net, int input, const float *scale, const float *shift,
                                 int *out) {
    fx_status st = check_open(net, input, "scale_shift");
    if (st) return st;
    if (!scale || !shift || !out)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "scale_shift needs scale and shift");
    fx_node *node = append(net, FX_LAYER_SCALE_SHIFT, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    node->weight = copy_floats(scale, (size_t)node->c);
    node->bias = copy_floats(shift, (size_t)node->c);
    return commit(net, node, node->weight && node->bias, out);
}

fx_status fx_net_add_relu(fx_net *net, int input, int *out) {
    fx_status st = check_open(net, input, "relu");
    if (st) return st;
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    fx_node *node = append(net, FX_LAYER_RELU, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    return commit(net, node, 1, out);
}

fx_status fx_net_add_prelu(fx_net *net, int input, const float *slope, int *out) {
    fx_status st = check_open(net, input, "prelu");
    if (st) return st;
    if (!slope || !out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "prelu needs slopes");
    fx_node *node = append(net, FX_LAYER_PRELU, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    node->weight = copy_floats(slope, (size_t)node->c);
    return commit(net, node, node->weight != NULL, out);
}

fx_status fx_net_add_pool_ex(fx_net *net, int input, fx_pool_kind kind, int kh, int kw, int sh, int sw, int pt,
                             int pl, int pb, int pr, int *out) {
    fx_status st = check_open(net, input, "pool");
    if (st) return st;
    if (kind != FX_POOL_MAX && kind != FX_POOL_AVG)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "unknown pooling kind %d", (int)kind);
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    const fx_window wh = {kh, sh, pt, pb, 1}, ww = {kw, sw, pl, pr, 1};
    st = check_window(&net->nodes[input], "pool", &wh, &ww);
    if (st) return st;
    fx_node *node = append(net, kind == FX_POOL_MAX ? FX_LAYER_MAX_POOL : FX_LAYER_AVG_POOL, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    set_window(node, &wh, &ww);
    return commit(net, node, 1, out);
}

fx_status fx_net_add_pool(fx_net *net, int input, fx_pool_kind kind, int kh, int kw, int sh,
                          int sw, int ph, int pw, int *out) {
    return fx_net_add_pool_ex(net, input, kind, kh, kw, sh, sw, ph, pw, ph, pw, out);
}

fx_status fx_net_add_global_avg_pool(fx_net *net, int input, int *out) {
    fx_status st = check_open(net, input, "global_avg_pool");
    if (st) return st;
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    if (net->nodes[input].flat)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "global_avg_pool needs a spatial input");
    fx_node *node = append(net, FX_LAYER_GLOBAL_AVG_POOL, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    node->kernel[0] = node->h, node->kernel[1] = node->w;
    node->stride[0] = node->stride[1] = 1;
    node->dilation[0] = node->dilation[1] = 1;
    node->h = node->w = 1;
    return commit(net, node, 1, out);
}

fx_status fx_net_add_sum(fx_net *net, int a, int b, int *out) {
    fx_status st = check_open(net, a, "sum");
    if (st) return st;
    st = check_open(net, b, "sum");
    if (st) return st;
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    const fx_node *na = &net->nodes[a], *nb = &net->nodes[b];
    if (na->flat != nb->flat)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "sum cannot add a dense output to a spatial one");
    int c = na->c > nb->c ? na->c : nb->c;
    int h = na->h > nb->h ? na->h : nb->h;
    int w = na->w > nb->w ? na->w : nb->w;
    fx_node *node = append(net, FX_LAYER_SUM, a);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    node->inputs[1] = b;
    node->n_inputs = 2;
    node->c = c, node->h = h, node->w = w;
    return commit(net, node, 1, out);
}

fx_status fx_net_add_sigmoid(fx_net *net, int input, int *out) {
    fx_status st = check_open(net, input, "sigmoid");
    if (st) return st;
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    fx_node *node = append(net, FX_LAYER_SIGMOID, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    return commit(net, node, 1, out);
}

fx_status fx_net_add_leaky_relu(fx_net *net, int input, float alpha, int *out) {
    fx_status st = check_open(net, input, "leaky_relu");
    if (st) return st;
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    /* a NaN or infinite slope would poison every output below zero */
    if (!(alpha == alpha) || alpha > 3.4e38f || alpha < -3.4e38f)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "leaky_relu alpha must be finite, got %g", (double)alpha);
    fx_node *node = append(net, FX_LAYER_LEAKY_RELU, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    node->alpha = alpha;
    return commit(net, node, 1, out);
}

fx_status fx_net_add_mul(fx_net *net, int a, int b, int *out) {
    fx_status st = check_open(net, a, "mul");
    if (st) return st;
    st = check_open(net, b, "mul");
    if (st) return st;
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    const fx_node *na = &net->nodes[a], *nb = &net->nodes[b];
    const int same = na->c == nb->c && na->h == nb->h && na->w == nb->w;
    /* a gate is C x 1 x 1 (a dense output counts as one) scaling a spatial node's channels */
    const int a_gate = na->c == nb->c && na->h == 1 && na->w == 1 && !nb->flat;
    const int b_gate = na->c == nb->c && nb->h == 1 && nb->w == 1 && !na->flat;
    if (!same && !a_gate && !b_gate)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                       "mul needs equal shapes or a %dx1x1 gate, got %dx%dx%d and %dx%dx%d", na->c, na->c, na->h,
                       na->w, nb->c, nb->h, nb->w);
    const int full = b_gate || same ? a : b; /* the input whose shape the product has */
    fx_node *node = append(net, FX_LAYER_MUL, full);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    node->inputs[0] = a;
    node->inputs[1] = b;
    node->n_inputs = 2;
    /* a product of two dense outputs stays (N, C); anything else is spatial */
    node->flat = na->flat && nb->flat;
    return commit(net, node, 1, out);
}

fx_status fx_net_add_concat(fx_net *net, int a, int b, int *out) {
    fx_status st = check_open(net, a, "concat");
    if (st) return st;
    st = check_open(net, b, "concat");
    if (st) return st;
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    const fx_node *na = &net->nodes[a], *nb = &net->nodes[b];
    /* a dense output counts as C x 1 x 1 (viewed so when the other input is spatial) */
    if (na->h != nb->h || na->w != nb->w)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                       "concat needs inputs of the same rows and columns, got %dx%dx%d and %dx%dx%d", na->c, na->h,
                       na->w, nb->c, nb->h, nb->w);
    /* both counts are at most FX_MAX_DIM * 16 (dense), so the sum fits an int */
    const long long c = (long long)na->c + nb->c;
    if (c > FX_MAX_DIM * 16)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "concat output has %lld channels, more than %d", c,
                       FX_MAX_DIM * 16);
    fx_node *node = append(net, FX_LAYER_CONCAT, a);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    node->inputs[1] = b;
    node->n_inputs = 2;
    node->c = (int)c;
    node->flat = na->flat && nb->flat;
    return commit(net, node, 1, out);
}

fx_status fx_net_add_dense(fx_net *net, int input, int out_features, const float *weight,
                           const float *bias, int *out) {
    fx_status st = check_open(net, input, "dense");
    if (st) return st;
    if (!weight || !out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "dense weight must not be NULL");
    if (out_features < 1 || out_features > FX_MAX_DIM * 16)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "dense needs >= 1 outputs, got %d", out_features);
    fx_node *node = append(net, FX_LAYER_DENSE, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    size_t in_features = (size_t)node->c * (size_t)node->h * (size_t)node->w;
    node->weight = copy_floats(weight, (size_t)out_features * in_features);
    node->bias = bias ? copy_floats(bias, (size_t)out_features) : NULL;
    node->c = out_features;
    node->h = node->w = 1;
    node->flat = 1;
    return commit(net, node, node->weight && (!bias || node->bias), out);
}

fx_status fx_net_add_reshape(fx_net *net, int input, int channels, int height, int width, int *out) {
    fx_status st = check_open(net, input, "reshape");
    if (st) return st;
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    const fx_node *src = &net->nodes[input];
    const long long have = (long long)src->c * src->h * src->w;
    if (channels < 1 || height < 1 || width < 1 || channels > FX_MAX_DIM * 16 || height > FX_MAX_DIM ||
        width > FX_MAX_DIM || (long long)channels * height * width != have)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "reshape to %dx%dx%d must keep the input's %lld values", channels,
                       height, width, have);
    fx_node *node = append(net, FX_LAYER_RESHAPE, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    node->c = channels, node->h = height, node->w = width;
    node->flat = 0;
    return commit(net, node, 1, out);
}

fx_status fx_net_add_resize(fx_net *net, int input, int height, int width, fx_resize_kind kind, int *out) {
    fx_status st = check_open(net, input, "resize");
    if (st) return st;
    if (!out) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "out must not be NULL");
    if (net->nodes[input].flat) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "resize needs a spatial input");
    if (kind != FX_RESIZE_NEAREST && kind != FX_RESIZE_BILINEAR)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "unknown resize kind %d", (int)kind);
    if (height < 1 || width < 1 || height > FX_MAX_DIM || width > FX_MAX_DIM)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "resize target must be positive, got %dx%d", height, width);
    fx_node *node = append(net, FX_LAYER_RESIZE, input);
    if (!node) return fx_fail(FX_STATUS_OUT_OF_MEMORY, "cannot grow the network");
    node->h = height, node->w = width;
    node->resize = kind;
    return commit(net, node, 1, out);
}

fx_status fx_net_node_shape(const fx_net *net, int node, int *c, int *h, int *w) {
    if (!net || node < 0 || node >= net->n_nodes || !c || !h || !w)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "node %d does not exist", node);
    *c = net->nodes[node].c;
    *h = net->nodes[node].h;
    *w = net->nodes[node].w;
    return FX_STATUS_OK;
}

fx_status fx_net_output_shape(const fx_net *net, int *c, int *h, int *w) {
    if (!net || !net->finalized)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "the network is not finalized");
    return fx_net_node_shape(net, net->output, c, h, w);
}

fx_status fx_net_finalize(fx_net *net, int output) {
    if (!net) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "net must not be NULL");
    if (net->finalized) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "the network is already finalized");
    if (output < 1 || output >= net->n_nodes)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "output %d must be a layer node (1..%d)", output,
                       net->n_nodes - 1);
    net->output = output;
    fx_status st = fx_net_fuse(net);
    if (st) return st;
    net->finalized = 1;
    return FX_STATUS_OK;
}
