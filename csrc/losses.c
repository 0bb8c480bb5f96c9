/*
 * losses.c - pixel losses for training decoders, with their gradients.
 *
 * Sums run in double so that the loss of a large batch does not depend on
 * the order OpenMP adds the partial sums in beyond float precision.
 */
#include <math.h>

#include "fx_internal.h"

fx_status fx_pixel_loss(size_t n, const float *out, const float *target, fx_loss_kind kind, float weight,
                        float *grad, double *loss) {
    if (!out || !target || !grad || !loss) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "pixel loss: NULL buffer");
    if (n == 0) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "pixel loss over zero values");
    if (kind != FX_LOSS_L1 && kind != FX_LOSS_L2)
        return fx_fail(FX_STATUS_INVALID_ARGUMENT, "unknown pixel loss %d", (int)kind);
    const double per_value = (double)weight / (double)n;
    double total = 0.0;
    if (kind == FX_LOSS_L1) {
        const float g = (float)per_value;
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (size_t i = 0; i < n; ++i) {
            const float d = out[i] - target[i];
            total += fabs((double)d);
            grad[i] = d > 0 ? g : (d < 0 ? -g : 0.0f);
        }
    } else {
        const float g = (float)(2.0 * per_value);
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (size_t i = 0; i < n; ++i) {
            const float d = out[i] - target[i];
            total += (double)d * d;
            grad[i] = g * d;
        }
    }
    *loss = total * per_value;
    return isfinite(*loss) ? FX_STATUS_OK
                           : fx_fail(FX_STATUS_INVALID_ARGUMENT, "pixel loss is not finite (NaN or inf in the inputs)");
}
