#include "KernelsC.h"
#include "simd.h"
#include <math.h>

void pds_rmsnorm(const float *x, const float *weight, float eps, int rows, int dim, float *out) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *o = out + (size_t)r * dim;
        float mean = dot_f32(xr, xr, dim) / (float)dim;
        float inv = 1.0f / sqrtf(mean + eps);
        for (int i = 0; i < dim; i++) o[i] = weight[i] * (xr[i] * inv);
    }
}

void pds_silu_mul(const float *gate, float *x, size_t count) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= count; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(silu, _mm256_loadu_ps(x + i)));
    }
    for (; i < count; i++) {
        float g = gate[i];
        x[i] = (g / (1.0f + expf(-g))) * x[i];
    }
}

void pds_add(float *x, const float *y, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < count; i++) x[i] += y[i];
}

void pds_rope(float *x, int tokens, int heads, int head_dim, const int32_t *positions, const float *inv_freq) {
    int half = head_dim / 2;
    float cs[half > 0 ? half : 1], sn[half > 0 ? half : 1];
    for (int t = 0; t < tokens; t++) {
        float pos = (float)positions[t];
        for (int i = 0; i < half; i++) {
            float angle = pos * inv_freq[i];
            cs[i] = cosf(angle);
            sn[i] = sinf(angle);
        }
        for (int h = 0; h < heads; h++) {
            float *v = x + ((size_t)t * heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * cs[i] - b * sn[i];
                v[i + half] = b * cs[i] + a * sn[i];
            }
        }
    }
}
