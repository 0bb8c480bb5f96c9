/*
 * optim.c - parameter updates for training networks in the core.
 *
 * Adam keeps two moment buffers per parameter array; the caller owns them
 * (so several networks, or a checkpoint, can hold their own state).
 */
#include <math.h>

#include "fx_internal.h"

fx_status fx_adam_update(size_t n, float *param, const float *grad, float *m, float *v, float lr, float beta1,
                         float beta2, float eps, int step) {
    if (!param || !grad || !m || !v) return fx_fail(FX_STATUS_INVALID_ARGUMENT, "adam: NULL buffer");
    if (step < 1 || !(lr > 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0))
        return fx_fail(FX_STATUS_INVALID_ARGUMENT,
                       "adam needs step >= 1, lr > 0, 0 <= beta < 1 and eps > 0 (step %d, lr %g, betas %g %g, eps %g)",
                       step, lr, beta1, beta2, eps);
    /* bias corrections folded into the step size, as in the paper's section 2 */
    const double c1 = 1.0 - pow(beta1, step), c2 = 1.0 - pow(beta2, step);
    const float alpha = (float)(lr * sqrt(c2) / c1);
    const float eps_hat = (float)(eps * sqrt(c2));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) {
        m[i] = beta1 * m[i] + (1.0f - beta1) * grad[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * grad[i] * grad[i];
        param[i] -= alpha * m[i] / (sqrtf(v[i]) + eps_hat);
    }
    return FX_STATUS_OK;
}
