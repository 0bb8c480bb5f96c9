/*
 * tiny_net.c - the fxplain core used from plain C, without Python.
 *
 * Builds a tiny network through the public API (fxplain.h only):
 *
 *     input 3x8x8 -> conv 3x3 (4 channels, padding 1, bias) -> relu
 *                 -> global average pool -> dense (2 outputs, bias)
 *
 * runs fx_net_forward on two known images, and compares the result with a
 * plain C loop reference computed here (within 1e-4). It also checks
 * fx_status_name and that a bad call fails with FX_STATUS_INVALID_ARGUMENT
 * and a message. Prints "tiny_net: ok" and returns 0; nonzero on any mismatch.
 *
 * Build from the repository root (oneDNN from the PyPI wheels
 * onednn-devel-cpu-gomp / onednn-cpu-gomp, or any oneDNN v3 prefix), with the
 * flags setup.py uses for the core and no Python include path:
 *
 *     gcc -std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE -pthread -fopenmp \
 *         -I csrc -I <onednn>/include csrc/[a-z]*.c csrc/examples/tiny_net.c \
 *         -L <onednn>/lib -ldnnl -lm -o tiny_net
 *     LD_LIBRARY_PATH=<onednn>/lib ./tiny_net
 *
 * tests/runtime/test_c_example.py does exactly this (finding the wheels'
 * directories through importlib.metadata, as setup.py does).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fxplain.h"

enum { N = 2, C = 3, H = 8, W = 8, OC = 4, K = 3, OUT = 2 };

static int failures = 0;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "tiny_net: FAILED: %s\n", what);
        failures++;
    }
}

/* Run an fx call; on failure report it with its status name and message. */
static int ok_call(fx_status st, const char *call) {
    if (st == FX_STATUS_OK) return 1;
    fprintf(stderr, "tiny_net: %s failed: %s: %s\n", call, fx_status_name(st), fx_last_error());
    failures++;
    return 0;
}

/* The same network in plain loops. pixels [N][H][W][C]; out [N][OUT]. */
static void reference(const float *pixels, const float *mean, const float *scale, const float *conv_w,
                      const float *conv_b, const float *dense_w, const float *dense_b, float *out) {
    for (int n = 0; n < N; ++n) {
        double pooled[OC];
        for (int o = 0; o < OC; ++o) {
            double total = 0.0;
            for (int y = 0; y < H; ++y)
                for (int x = 0; x < W; ++x) {
                    double acc = conv_b[o];
                    for (int i = 0; i < C; ++i)
                        for (int ky = 0; ky < K; ++ky)
                            for (int kx = 0; kx < K; ++kx) {
                                int sy = y + ky - 1, sx = x + kx - 1; /* padding 1 */
                                if (sy < 0 || sy >= H || sx < 0 || sx >= W) continue;
                                double v = pixels[((n * H + sy) * W + sx) * C + i];
                                v = (v - mean[i]) * scale[i];
                                acc += conv_w[((o * C + i) * K + ky) * K + kx] * v;
                            }
                    total += acc > 0.0 ? acc : 0.0; /* relu */
                }
            pooled[o] = total / (H * W);
        }
        for (int j = 0; j < OUT; ++j) {
            double acc = dense_b[j];
            for (int o = 0; o < OC; ++o) acc += dense_w[j * OC + o] * pooled[o];
            out[n * OUT + j] = (float)acc;
        }
    }
}

int main(void) {
    /* ---- status names --------------------------------------------------- */
    check(strcmp(fx_status_name(FX_STATUS_OK), "ok") == 0, "fx_status_name(OK)");
    check(strcmp(fx_status_name(FX_STATUS_INVALID_ARGUMENT), "invalid_argument") == 0,
          "fx_status_name(INVALID_ARGUMENT)");
    check(strcmp(fx_status_name(FX_STATUS_OUT_OF_MEMORY), "out_of_memory") == 0, "fx_status_name(OUT_OF_MEMORY)");
    check(strcmp(fx_status_name(FX_STATUS_UNSUPPORTED), "unsupported") == 0, "fx_status_name(UNSUPPORTED)");
    check(strcmp(fx_status_name(FX_STATUS_BACKEND_ERROR), "backend_error") == 0, "fx_status_name(BACKEND_ERROR)");
    check(strcmp(fx_status_name((fx_status)99), "unknown") == 0, "fx_status_name(99)");
    check(strcmp(fx_status_name((fx_status)-1), "unknown") == 0, "fx_status_name(-1)");

    /* ---- known parameters and images ------------------------------------- */
    static float conv_w[OC * C * K * K], conv_b[OC], dense_w[OUT * OC], dense_b[OUT];
    static float pixels[N * H * W * C], out[N * OUT], expected[N * OUT];
    const float mean[C] = {100.0f, 120.0f, 140.0f}, scale[C] = {0.01f, 0.02f, 0.015f};
    for (int k = 0; k < OC * C * K * K; ++k) conv_w[k] = 0.05f * (float)((k * 7) % 11 - 5);
    for (int o = 0; o < OC; ++o) conv_b[o] = 0.1f * (float)(o - 1);
    for (int k = 0; k < OUT * OC; ++k) dense_w[k] = 0.25f * (float)((k * 3) % 5 - 2);
    for (int j = 0; j < OUT; ++j) dense_b[j] = 0.5f - (float)j;
    for (int k = 0; k < N * H * W * C; ++k) pixels[k] = (float)((k * 37) % 256);

    /* ---- the network ----------------------------------------------------- */
    fx_net *net = NULL;
    int x = 0, y = -1;
    if (!ok_call(fx_net_create(&net, C, H, W), "fx_net_create")) return 1;

    /* an invalid call: node 42 does not exist */
    fx_status st = fx_net_add_conv(net, 42, OC, K, K, 1, 1, 1, 1, conv_w, conv_b, &y);
    check(st == FX_STATUS_INVALID_ARGUMENT, "fx_net_add_conv with a bad input id returns INVALID_ARGUMENT");
    check(strlen(fx_last_error()) > 0, "the failed call leaves a message in fx_last_error()");
    check(strstr(fx_last_error(), "42") != NULL, "the message names the bad input id");

    int ok = ok_call(fx_net_set_input_normalization(net, mean, scale), "fx_net_set_input_normalization") &&
             ok_call(fx_net_add_conv(net, x, OC, K, K, 1, 1, 1, 1, conv_w, conv_b, &y), "fx_net_add_conv") &&
             ok_call(fx_net_add_relu(net, y, &y), "fx_net_add_relu") &&
             ok_call(fx_net_add_global_avg_pool(net, y, &y), "fx_net_add_global_avg_pool") &&
             ok_call(fx_net_add_dense(net, y, OUT, dense_w, dense_b, &y), "fx_net_add_dense") &&
             ok_call(fx_net_finalize(net, y), "fx_net_finalize");
    int oc = 0, oh = 0, ow = 0;
    if (ok && ok_call(fx_net_output_shape(net, &oc, &oh, &ow), "fx_net_output_shape"))
        check(oc == OUT && oh == 1 && ow == 1, "output shape is 2x1x1");
    if (ok && ok_call(fx_net_forward(net, N, pixels, out), "fx_net_forward")) {
        reference(pixels, mean, scale, conv_w, conv_b, dense_w, dense_b, expected);
        for (int k = 0; k < N * OUT; ++k) {
            const double err = fabs((double)out[k] - expected[k]);
            if (err > 1e-4 * (1.0 + fabs(expected[k]))) {
                fprintf(stderr, "tiny_net: out[%d] = %.7g, expected %.7g\n", k, out[k], expected[k]);
                failures++;
            }
        }
    }
    fx_net_destroy(net);

    if (failures) {
        fprintf(stderr, "tiny_net: %d check(s) failed\n", failures);
        return 1;
    }
    printf("tiny_net: ok (out = %.6f %.6f / %.6f %.6f)\n", out[0], out[1], out[2], out[3]);
    return 0;
}
