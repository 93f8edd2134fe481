// The swap test programs' pattern: word i of a buffer stamped with `tag` holds
// stamped(tag, i), written by the `stamp` kernel (with its CPU twin for the
// simulated GPU), so that any word in the wrong place or lost shows.
#pragma once

#include <cstddef>

#include "simcuda/twin.h"

__host__ __device__ inline unsigned stamped(unsigned tag, size_t i) {
  return tag * 2654435761u + static_cast<unsigned>(i);
}

__global__ void stamp(unsigned* out, unsigned tag, size_t words) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < words; i += size_t{gridDim.x} * blockDim.x)
    out[i] = stamped(tag, i);
}
static void stamp_cpu(const simcuda::Grid&, unsigned* out, unsigned tag, size_t words) {
  for (size_t i = 0; i < words; ++i) out[i] = stamped(tag, i);
}
SIMCUDA_TWIN(stamp, stamp_cpu);
