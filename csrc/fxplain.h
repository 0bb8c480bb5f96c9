/*
 * fxplain.h - public C API of the fxplain core.
 *
 * The core runs feed-forward convolutional networks on oneDNN. It knows
 * nothing about Python; the CPython glue in csrc/py/ is its user (and
 * csrc/examples/tiny_net.c, built against this header alone).
 *
 * A short tour:
 *
 *     fx_net *net = NULL;
 *     int x = 0, y;                                   // node 0 is the input
 *     fx_net_create(&net, 3, 150, 150);               // C, H, W of one image
 *     fx_net_set_input_normalization(net, mean, scale);
 *     fx_net_add_conv(net, x, 32, 7, 7, 2, 2, 0, 0, w, b, &y);
 *     fx_net_add_relu(net, y, &y);
 *     ...
 *     fx_net_finalize(net, y);                        // fuses, freezes the graph
 *     fx_net_forward(net, n, pixels, out);            // any n, many times
 *     fx_net_destroy(net);
 *
 * Conventions: every function returns an fx_status; on failure
 * fx_last_error() gives a message for the calling thread. Images enter as
 * float32 pixels in NHWC order; outputs leave as float32 NCHW (a dense
 * layer's output is (N, C)). Convolutions are cross-correlations with
 * weights laid out (out, in, kh, kw); pooling rounds down; a sum of two
 * differently shaped tensors zero-pads both to the larger shape. The net
 * copies every weight array it is given. A finalized net may be used from
 * several threads; calls are serialised by a lock inside the net (oneDNN
 * already spreads one call over all cores).
 */
#ifndef FXPLAIN_H
#define FXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FX_STATUS_OK = 0,
    FX_STATUS_INVALID_ARGUMENT = 1, /* caller error: bad shape, id, size */
    FX_STATUS_OUT_OF_MEMORY = 2,
    FX_STATUS_UNSUPPORTED = 3,      /* valid request the core cannot do */
    FX_STATUS_BACKEND_ERROR = 4     /* oneDNN reported a failure */
} fx_status;

/* Message describing the last failure on the calling thread ("" if none). */
const char *fx_last_error(void);

/* Name of a status: "ok", "invalid_argument", "out_of_memory", "unsupported",
 * "backend_error"; "unknown" for any other value. The string is static. */
const char *fx_status_name(fx_status status);

/* Facts about the oneDNN library in use. */
typedef struct {
    int major, minor, patch;
    const char *hash;        /* git hash of the oneDNN build */
    const char *cpu_runtime; /* "OpenMP", "TBB", "sequential", ... */
    const char *isa;         /* effective instruction set, e.g. "avx512_core_fp16" */
} fx_backend_info;

fx_status fx_backend_get_info(fx_backend_info *info);

/* Threads the calling thread's oneDNN primitives and OpenMP kernels use from
   now on (an OpenMP setting of the calling thread: a worker process of a
   cluster bounds its tasks without touching other threads). n >= 1. */
fx_status fx_set_num_threads(int n);
int fx_get_num_threads(void);

typedef enum { FX_POOL_MAX = 0, FX_POOL_AVG = 1 } fx_pool_kind;
/* Resize sampling: nearest neighbour, or bilinear with half-pixel centres
   (source coordinate (o + 0.5) * in / out - 0.5, clamped at the borders). */
typedef enum { FX_RESIZE_NEAREST = 0, FX_RESIZE_BILINEAR = 1 } fx_resize_kind;

typedef struct fx_net fx_net;

fx_status fx_net_create(fx_net **net, int channels, int height, int width);
void fx_net_destroy(fx_net *net); /* accepts NULL */

/* x = (pixel - mean[c]) * scale[c], one value per input channel.
 * Default: mean 0, scale 1. */
fx_status fx_net_set_input_normalization(fx_net *net, const float *mean, const float *scale);

/* Each fx_net_add_* appends a layer reading earlier node(s) and writes the
 * id of its output node to *out. */
fx_status fx_net_add_conv(fx_net *net, int input, int out_channels, int kernel_h, int kernel_w,
                          int stride_h, int stride_w, int pad_h, int pad_w,
                          const float *weight /* [out][in][kh][kw] */,
                          const float *bias /* [out] or NULL */, int *out);
/* The general convolution (ONNX Conv): padding top/left and bottom/right
 * separately, dilation (1 = dense kernel), groups (weight [out][in/groups][kh][kw];
 * depthwise is groups == in == out). out = (in + pad_begin + pad_end -
 * dil * (k - 1) - 1) / stride + 1, rounded down. fx_net_add_conv is this with
 * symmetric padding, dilation 1 and one group. */
fx_status fx_net_add_conv_ex(fx_net *net, int input, int out_channels, int kernel_h, int kernel_w,
                             int stride_h, int stride_w, int pad_top, int pad_left, int pad_bottom, int pad_right,
                             int dilation_h, int dilation_w, int groups,
                             const float *weight /* [out][in/groups][kh][kw] */,
                             const float *bias /* [out] or NULL */, int *out);
fx_status fx_net_add_scale_shift(fx_net *net, int input, const float *scale /* [C] */,
                                 const float *shift /* [C] */, int *out);
fx_status fx_net_add_relu(fx_net *net, int input, int *out);
fx_status fx_net_add_prelu(fx_net *net, int input, const float *slope /* [C] */, int *out);
fx_status fx_net_add_pool(fx_net *net, int input, fx_pool_kind kind, int kernel_h, int kernel_w,
                          int stride_h, int stride_w, int pad_h, int pad_w, int *out);
/* Pooling with padding top/left and bottom/right separately (ONNX pads; a
 * ceil_mode export is extra end padding). */
fx_status fx_net_add_pool_ex(fx_net *net, int input, fx_pool_kind kind, int kernel_h, int kernel_w,
                             int stride_h, int stride_w, int pad_top, int pad_left, int pad_bottom, int pad_right,
                             int *out);
fx_status fx_net_add_global_avg_pool(fx_net *net, int input, int *out);
fx_status fx_net_add_sum(fx_net *net, int a, int b, int *out);
/* 1 / (1 + exp(-x)). */
fx_status fx_net_add_sigmoid(fx_net *net, int input, int *out);
/* x where positive, alpha * x elsewhere (alpha finite). */
fx_status fx_net_add_leaky_relu(fx_net *net, int input, float alpha, int *out);
/* a * b elementwise: equal shapes, or one of them C x 1 x 1 scaling the
 * other's channels (a squeeze-excitation gate), in either order. The output
 * has the larger shape. */
fx_status fx_net_add_mul(fx_net *net, int a, int b, int *out);
/* a and b stacked along channels (a's first); their rows and columns agree. */
fx_status fx_net_add_concat(fx_net *net, int a, int b, int *out);
fx_status fx_net_add_dense(fx_net *net, int input, int out_features,
                           const float *weight /* [out][C*H*W] */,
                           const float *bias /* [out] or NULL */, int *out);

/* View a node's values (flattened in C, H, W order) as channels x height x
 * width; the element count must not change. Decoders use it after a dense layer. */
fx_status fx_net_add_reshape(fx_net *net, int input, int channels, int height, int width, int *out);
/* Resample a spatial node to height x width (two oneDNN matmuls, net_resize.c). */
fx_status fx_net_add_resize(fx_net *net, int input, int height, int width, fx_resize_kind kind, int *out);

/* Shape of a node: channels, height, width (a dense output is C x 1 x 1). */
fx_status fx_net_node_shape(const fx_net *net, int node, int *c, int *h, int *w);

/* Arithmetic of convolutions and dense layers. FX_MATH_BF16 lets oneDNN
 * compute them with bfloat16 inputs and float32 accumulation (about twice the
 * throughput on CPUs with AVX512-BF16 or AMX; about 3 significant digits).
 * Tensors stay float32 in memory. May be changed at any time; cached
 * primitives are rebuilt. */
typedef enum { FX_MATH_FP32 = 0, FX_MATH_BF16 = 1, FX_MATH_INT8 = 2 } fx_math_mode;

fx_status fx_net_set_math_mode(fx_net *net, fx_math_mode mode);

/* FX_MATH_INT8 (net_int8.c): convolutions with 8 or more input channels run
 * on oneDNN's int8 kernels, weights quantised per output channel, inputs per
 * tensor with scales from this calibration (an FP32 pass over `n` images, the
 * largest absolute value each convolution reads). Everything else stays
 * FP32. A net in int8 mode refuses to run before its first calibration;
 * recalibrating (say, on each explained pair) needs no rebuild. */
fx_status fx_net_calibrate_int8(fx_net *net, int n, const float *pixels);

/* Symmetric per-row quantisation: scales[o] = max|w[o][:]| / levels (1 for an
 * all-zero row), q = round-half-even(w / scales[o]) clamped to +-levels.
 * w is [rows][per_row]; levels in [1, 127]. */
fx_status fx_quantize_per_channel(const float *w, int rows, size_t per_row, int levels, signed char *q,
                                  float *scales);

/* Shape of the finalized network's output node. */
fx_status fx_net_output_shape(const fx_net *net, int *c, int *h, int *w);

/* Freeze the graph with `output` as the network's result. Fuses layers
 * (scale/shift folded into convolutions; sums and activations become
 * post-ops). No layer may be added afterwards. */
fx_status fx_net_finalize(fx_net *net, int output);

/* Number of oneDNN primitives one forward pass executes (after fusion). */
fx_status fx_net_step_count(fx_net *net, int batch, int *steps);

/* Run the network on n images.
 *   pixels: [n][H][W][C] float32
 *   out:    [n][C_out * H_out * W_out] float32, NCHW order per image
 * Primitives are built on first use of each batch size and cached. */
fx_status fx_net_forward(fx_net *net, int n, const float *pixels, float *out);

/* Forward and backward pass on n images (plans built on first use and cached):
 *   out:         [n][C_out * H_out * W_out], as fx_net_forward
 *   grad_pixels: [n][H][W][C], the gradient of sum(out * grad_output) with
 *                respect to the input pixels (on their 0-255 scale).
 * Uses oneDNN's backward-data primitives; every layer's output is kept. */
fx_status fx_net_input_gradient(fx_net *net, int n, const float *pixels, const float *grad_output, float *out,
                                float *grad_pixels);

/* Like fx_net_input_gradient, and also the gradients of sum(out * grad_output)
 * with respect to every convolution's and dense layer's weights and bias,
 * copied into weight_grads[node] / bias_grads[node] (layouts as given to
 * fx_net_add_*, sizes from fx_net_parameter_sizes; NULL entries skipped).
 * A scale/shift folded into a convolution is part of that convolution's
 * weights here. */
fx_status fx_net_parameter_gradients(fx_net *net, int n, const float *pixels, const float *grad_output, float *out,
                                     float *grad_pixels, float **weight_grads, float **bias_grads);
/* The same in two calls, for losses that need the output before the
 * backward pass can start (training a decoder, an identity loss):
 * fx_net_train_forward runs the forward pass of a training plan and keeps
 * every layer's output; fx_net_train_backward then takes the gradient of the
 * loss with respect to that output. `parameters` (0/1) chooses whether the
 * backward pass also computes parameter gradients (weight_grads/bias_grads
 * as for fx_net_parameter_gradients; they may be NULL without). Any other
 * run of the net in between invalidates the forward pass (the backward call
 * then fails; nothing is computed from overwritten activations); so does a
 * batch size `n` other than the forward pass's. */
fx_status fx_net_train_forward(fx_net *net, int parameters, int n, const float *pixels, float *out);
fx_status fx_net_train_backward(fx_net *net, int n, const float *grad_output, float *grad_pixels,
                                float **weight_grads, float **bias_grads);

/* Number of weight and bias values of a layer (0 for layers without). */
fx_status fx_net_parameter_sizes(const fx_net *net, int node, size_t *weight_count, size_t *bias_count);
/* Replace a conv/dense layer's weights and bias. Cached plans keep their
 * primitives and only redo their reordered copies of these arrays, so a
 * training step costs no primitive creation. */
fx_status fx_net_set_parameters(fx_net *net, int node, const float *weight, const float *bias);

/* Pixel losses of training: over n values, loss = weight * mean(|out - target|)
 * (FX_LOSS_L1) or weight * mean((out - target)^2) (FX_LOSS_L2); grad receives
 * its gradient with respect to out (sign(0) = 0 for L1). */
typedef enum { FX_LOSS_L1 = 1, FX_LOSS_L2 = 2 } fx_loss_kind;
fx_status fx_pixel_loss(size_t n, const float *out, const float *target, fx_loss_kind kind, float weight,
                        float *grad, double *loss);

/* One Adam step (Kingma & Ba) over n parameters, in place; step counts from 1. */
fx_status fx_adam_update(size_t n, float *param, const float *grad, float *m, float *v, float lr, float beta1,
                         float beta2, float eps, int step);

/* fx_net_input_gradient for n output gradients of ONE image (pixels: [1][H][W][C];
 * grad_output [n][...]; out [1][...]; grad_pixels [n][H][W][C]): the forward
 * pass runs once and its results are shared by the n backward passes. */
fx_status fx_net_input_gradient_shared(fx_net *net, int n, const float *pixels, const float *grad_output,
                                       float *out, float *grad_pixels);

/* ---- saliency kernels (masks.c, saliency.c) ---------------------------
 * Building blocks of perturbation explanations. Images are [h][w][c] float32
 * pixels; masks [count][h][w] in [0, 1]; rectangles int32 (top, left,
 * bottom, right), half-open. Masks are reproducible from (seed, index). */

/* RISE masks: a (grid+1)^2 grid kept with probability p_keep, bilinearly
 * upsampled with a random sub-cell shift. Masks first..first+count-1. */
fx_status fx_masks_rise(uint64_t seed, int64_t first, int count, int h, int w, int grid, double p_keep,
                        float *out);
/* RISE masks with p_keep = 1/2 drawn in blocks of fx_orthogonal_block_size(grid)
 * masks whose cells follow orthogonal, balanced columns of a Paley Hadamard
 * design (random column choice, signs and one shift per block). */
int64_t fx_orthogonal_block_size(int grid); /* -1 for grid < 1 or too large */
fx_status fx_masks_rise_orthogonal(uint64_t seed, int64_t first, int count, int h, int w, int grid, float *out);
/* Binary masks: ones except `holes` random squares of side `patch`. */
fx_status fx_masks_patches(uint64_t seed, int64_t first, int count, int h, int w, int patch, int holes,
                           float *out);

/* out[i] = fill + masks[i] * (image - fill), per pixel and channel. */
fx_status fx_apply_masks(int count, int h, int w, int c, const float *image, const float *fill,
                         const float *masks, float *out);
/* out[i] = image with rects[i] replaced by fill. */
fx_status fx_occlude(int count, int h, int w, int c, const float *image, const float *fill,
                     const int32_t *rects, float *out);

typedef enum { FX_SCORE_NEG_SQUARED_EUCLIDEAN = 0, FX_SCORE_COSINE = 1 } fx_score_kind;

/* Similarity of each of n embeddings [n][dim] to ref [dim]. */
fx_status fx_embedding_scores(fx_score_kind kind, int n, int dim, const float *emb, const float *ref,
                              double *out);

/* Streaming sums for the per-pixel Pearson correlation between mask values
 * and scores: sum_m += m, sum_mm += m^2, sum_ms += m * s over the masks. */
fx_status fx_correlation_accumulate(int count, size_t pixels, const float *masks, const double *scores,
                                    double *sum_m, double *sum_mm, double *sum_ms);
/* For each rectangle i: sum += values[i], hits += 1 over its pixels. */
fx_status fx_rect_accumulate(int count, int h, int w, const int32_t *rects, const double *values,
                             double *sum, double *hits);

/* ---- faces: landmarks and alignment (shape_predictor.c, chip.c) ---------
 * dlib's shape predictors (5 and 68 points) and face chips, replicated closely enough to
 * reproduce dlib's landmarks and chips. Images are uint8 [h][w][channels],
 * row-major; boxes are dlib rectangles (left, top, right, bottom), inclusive;
 * points are (x, y) = (column, row). */

/* A cascade of regression-tree forests; the arrays are borrowed, not copied.
 * S = 2^depth - 1 splits and S + 1 leaves per tree. */
typedef struct {
    int parts;                   /* P landmarks */
    int cascades;                /* number of cascade levels */
    int trees;                   /* trees per cascade level */
    int depth;                   /* split levels per tree */
    int features;                /* F feature pixels per cascade level */
    const float *initial_shape;  /* [P][2] mean shape in the box's unit frame */
    const int32_t *split_index;  /* [cascades][trees][S][2] feature pair of each split, < F */
    const float *split_thresh;   /* [cascades][trees][S] */
    const float *leaf_values;    /* [cascades][trees][S+1][P][2] shape increments */
    const int32_t *anchor;       /* [cascades][F] landmark each feature pixel hangs on, < P */
    const float *deltas;         /* [cascades][F][2] offset from the anchor, in the mean shape's frame */
} fx_shape_predictor;

/* Check sizes and that every index is in range. */
fx_status fx_shape_predictor_check(const fx_shape_predictor *sp);
/* Landmarks of the face in `box` of an image with 1 (gray) or 3 (RGB; gray =
 * (r+g+b)/3, integer) channels: out [P][2], float64, not rounded (dlib rounds
 * half up to integer pixels). Pixels outside the image read as 0. */
fx_status fx_shape_predict(const fx_shape_predictor *sp, int height, int width, int channels,
                           const uint8_t *image, const int32_t box[4], double *out);

/* dlib's chip_details: a rectangle of the photo, turned by `angle` radians
 * about its centre, sampled onto rows x cols pixels. */
typedef struct {
    double left, top, right, bottom, angle;
    int rows, cols;
} fx_chip_details;

/* get_face_chip_details(shape, size, padding) for 5 landmarks [5][2] in dlib's order. */
fx_status fx_face_chip_details(const double landmarks[10], int size, double padding, fx_chip_details *out);
/* extract_image_chip(image, details) for an RGB image: chip [rows][cols][3]
 * (bilinear, black outside, through dlib's pyramid_down<2> when shrinking by
 * more than 2). transform (may be NULL) receives the affine map chip (col, row)
 * -> photo (x, y) as {m00, m01, b0, m10, m11, b1}. */
fx_status fx_extract_image_chip(int height, int width, const uint8_t *image, const fx_chip_details *details,
                                uint8_t *chip, double transform[6]);

/* ---- model files: dlib's serialisation (dlib_serial.c) -------------------- */

/* Decode count dlib-serialised integers from data[*pos] on into out; *pos
 * advances past them, or stays on the first malformed one (error status). */
fx_status fx_dlib_integers(const uint8_t *data, size_t length, size_t *pos, size_t count, int64_t *out);

/* ---- faces: the CNN detector's input (pyramid.c) -------------------------
 * dlib's input_rgb_image_pyramid<pyramid_down<6>>: the photo and its 5/6
 * downscalings tiled into one image, and dlib's pyramid_up. */

/* Layout of the tiled pyramid of a height x width photo (dlib's
 * compute_tiled_image_pyramid_details): *levels rectangles [levels][4]
 * (left, top, right, bottom, inclusive; at most max_levels) in an image of
 * *out_height x *out_width. */
fx_status fx_tiled_pyramid_layout(int height, int width, int padding, int outer_padding, int max_levels,
                                  int *levels, int32_t *rects, int *out_height, int *out_width);
/* The tiled pyramid of an RGB image [h][w][3] as the network's input: out
 * [out_height][out_width][3] float32, (pixel - mean) / 256 in level 0, each
 * next level resampled from the previous as dlib does, 0 elsewhere. */
fx_status fx_tiled_pyramid(int height, int width, const uint8_t *image, const float mean[3], int levels,
                           const int32_t *rects, int out_height, int out_width, float *out);
/* The same in pieces, so that a large photo's tiled image is never whole: the
 * levels 1.. of the pyramid (level 0 is the photo itself, normalised when
 * read) into store, fx_pyramid_store_floats(levels, rects) floats, each level
 * [rows][cols][3] after the previous; then any band of rows [row0, row1) of
 * the tiled image, out [row1 - row0][out_width][3]. */
size_t fx_pyramid_store_floats(int levels, const int32_t *rects);
fx_status fx_pyramid_levels(int height, int width, const uint8_t *image, const float mean[3], int levels,
                            const int32_t *rects, float *store);
fx_status fx_tiled_pyramid_rows(int height, int width, const uint8_t *image, const float mean[3], int levels,
                                const int32_t *rects, const float *store, int out_width, int row0, int row1,
                                float *out);
/* dlib's pyramid_up(img) of an RGB image: out [2h+1][2w+2][3]. */
fx_status fx_pyramid_up(int height, int width, const uint8_t *image, uint8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* FXPLAIN_H */
