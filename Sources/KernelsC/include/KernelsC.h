#ifndef PDSERVE_KERNELSC_H
#define PDSERVE_KERNELSC_H
#include <stdint.h>
#include <stddef.h>

/// Widens `count` bfloat16 values (raw bits) to float32.
void pds_bf16_to_f32(const uint16_t *src, float *dst, size_t count);

/// Narrows `count` float32 values to bfloat16 with round-to-nearest-even.
void pds_f32_to_bf16(const float *src, uint16_t *dst, size_t count);

/// Widens `count` IEEE half values (raw bits) to float32.
void pds_f16_to_f32(const uint16_t *src, float *dst, size_t count);

#endif
