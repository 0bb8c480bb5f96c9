/*
 * fx_internal.h - shared by the core's C files: error helpers, the engine,
 * and the network's data structures. Not installed, not used by the glue.
 */
#ifndef FX_INTERNAL_H
#define FX_INTERNAL_H

#include <pthread.h>
#include <stddef.h>

#include <oneapi/dnnl/dnnl.h>

#include "fxplain.h"

/* ---- errors (status.c) ------------------------------------------------ */

/* Record a message for fx_last_error() and return `status`. */
fx_status fx_fail(fx_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
fx_status fx_fail_dnnl(dnnl_status_t status, const char *call, const char *file, int line);

/* Run a oneDNN call; on failure record where and why, set `st`, jump to cleanup. */
#define FX_DNNL(call)                                                              \
    do {                                                                           \
        dnnl_status_t fx_dnnl_status_ = (call);                                    \
        if (fx_dnnl_status_ != dnnl_success) {                                     \
            st = fx_fail_dnnl(fx_dnnl_status_, #call, __FILE__, __LINE__);         \
            goto cleanup;                                                          \
        }                                                                          \
    } while (0)

/* Run an fx call; on failure keep its status and message, jump to cleanup. */
#define FX_TRY(call)                                                               \
    do {                                                                           \
        st = (call);                                                               \
        if (st != FX_STATUS_OK) goto cleanup;                                      \
    } while (0)

/* ---- engine (engine.c) ------------------------------------------------ */

/* The process-wide CPU engine, created on first use. */
fx_status fx_engine_get(dnnl_engine_t *engine);

/* ---- network graph (net_graph.c) ------------------------------------- */

/* Kinds of layer. Each has a row (name, forward and backward builders) in
   the table of net_layers.c, which checks at compile time that it has
   FX_LAYER_COUNT rows: add new kinds just before FX_LAYER_COUNT. */
typedef enum {
    FX_LAYER_INPUT,
    FX_LAYER_CONV,
    FX_LAYER_SCALE_SHIFT,
    FX_LAYER_RELU,
    FX_LAYER_PRELU,
    FX_LAYER_MAX_POOL,
    FX_LAYER_AVG_POOL,
    FX_LAYER_GLOBAL_AVG_POOL,
    FX_LAYER_SUM,
    FX_LAYER_DENSE,
    FX_LAYER_RESHAPE,
    FX_LAYER_RESIZE,
    FX_LAYER_SIGMOID,
    FX_LAYER_MUL,
    FX_LAYER_LEAKY_RELU,
    FX_LAYER_CONCAT,
    FX_LAYER_COUNT /* not a kind: the number of kinds */
} fx_layer_kind;

/* The kind's lowercase name ("conv", "max_pool", ... as fxplain's
   LAYER_KINDS; "input" for node 0), "unknown" for other values (net_layers.c). */
const char *fx_layer_kind_name(fx_layer_kind kind);

typedef struct {
    fx_layer_kind kind;
    int inputs[2];
    int n_inputs;
    int c, h, w;      /* output shape of one image */
    int flat;         /* output is (N, C): produced by a dense layer */
    int kernel[2], stride[2], padding[2]; /* padding: top, left */
    int padding_end[2]; /* conv/pool: bottom, right (ONNX pads, ceil_mode as extra end padding) */
    int dilation[2];    /* conv: 1 = dense kernel (oneDNN's convention is this minus 1) */
    int groups;         /* conv: weight is (O, I/groups, kh, kw); 1 otherwise */
    float alpha;        /* leaky_relu: slope below zero */
    fx_resize_kind resize; /* resize layers: nearest or bilinear */
    float *weight;    /* conv [oc][ic][kh][kw]; dense [oc][in]; scale_shift scale[C]; prelu slope[C] */
    float *bias;      /* conv/dense bias [oc] or NULL; scale_shift shift[C] */
    /* Filled by fusion (net_fuse.c): */
    int group;        /* index of the node whose primitive computes this node */
    int folded;       /* a scale/shift folded into the weights of its group's head */
    int consumers;    /* how many layers (plus the net output) read this node */
} fx_node;

typedef struct fx_plan fx_plan; /* primitives for one batch size (net_plan.c) */

#define FX_PLAN_CACHE 4

struct fx_net {
    fx_node *nodes;   /* [n_nodes]; node 0 is the input */
    int n_nodes, cap_nodes;
    float *input_mean, *input_scale; /* [C of the input] */
    int output;
    int finalized;
    fx_math_mode math;               /* arithmetic of convolutions and dense layers */
    pthread_mutex_t lock;            /* serialises plan building and execution */
    dnnl_stream_t stream;
    fx_plan *plans[FX_PLAN_CACHE];
    unsigned long plan_used[FX_PLAN_CACHE]; /* clock value of each plan's last use */
    unsigned long clock;             /* for least-recently-used plan eviction */
    fx_plan *pending;                /* training plan whose forward ran last (fx_net_train_forward) */
    unsigned long pending_clock;     /* net->clock when it ran: a later call invalidates it */
    /* FX_MATH_INT8 (net_int8.c), NULL/0 until the first calibration: */
    float *int8_scale;               /* [n_nodes] a convolution's input scale (real = scale * integer) */
    char *int8_signed;               /* [n_nodes] its input is s8 (else u8) */
    int int8_calibrated;
    fx_plan *calib_plan;             /* FP32 plan of the last calibration's batch size */
};

/* ---- fusion (net_fuse.c) ---------------------------------------------- */

/* Assign every node to a group; fold scale/shift into convolutions. */
fx_status fx_net_fuse(fx_net *net);

/* relu, prelu, leaky_relu, sigmoid: the layers a convolution absorbs as an eltwise/prelu post-op. */
int fx_is_activation(fx_layer_kind kind);

/* Post-operations of the group headed by `head`, in order. */
typedef struct {
    int count;
    int node[8];      /* the fused node each post-op comes from */
} fx_post_chain;

void fx_group_post_chain(const fx_net *net, int head, fx_post_chain *chain);
/* Last node of the group headed by `head`: its output is the group's. */
int fx_group_tail(const fx_net *net, int head);

/* ---- plans (net_plan.c) ----------------------------------------------- */

/* What a plan computes: inference, or (training) also the backward pass to
   the input, optionally with the gradients of every conv/dense layer's
   parameters. */
enum { FX_TRAIN_NONE = 0, FX_TRAIN_INPUT = 1, FX_TRAIN_PARAMETERS = 2 };

/* A plan for `batch` images, in one of the modes above. */
fx_status fx_plan_build(fx_net *net, int batch, int training, fx_plan **plan);
fx_status fx_plan_run(fx_net *net, fx_plan *plan, const float *pixels, float *out);
/* After fx_plan_run on a training plan: the gradient of sum(out * grad_output)
   with respect to the pixels, [batch][H][W][C]. */
fx_status fx_plan_run_backward(fx_net *net, fx_plan *plan, const float *grad_output, float *grad_pixels);
int fx_plan_training(const fx_plan *plan);
/* After the net's copy of a parameter array (`data`) changed: redo the
   plan's reordered copies of it. */
fx_status fx_plan_refresh_parameters(fx_plan *plan, const float *data);
/* After a backward pass of an FX_TRAIN_PARAMETERS plan: copy each layer's
   parameter gradients into the caller's buffers (NULL entries skipped). */
fx_status fx_plan_copy_parameter_gradients(const fx_net *net, const fx_plan *plan, float **weight_grads,
                                           float **bias_grads);
fx_status fx_plans_replicate_forward(const fx_net *net, fx_plan *one, fx_plan *many, int *ok);
int fx_plan_batch(const fx_plan *plan);
int fx_plan_steps(const fx_plan *plan);
void fx_plan_destroy(fx_plan *plan);

/* ---- kernels (preprocess.c) ------------------------------------------ */

/* dst[i] = (src[i] - mean[i % c]) * scale[i % c] for an NHWC array. */
void fx_normalize_nhwc(const float *src, float *dst, size_t pixels, int c, const float *mean,
                       const float *scale);

#endif /* FX_INTERNAL_H */
