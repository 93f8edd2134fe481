// views.h — turning tensor descriptors into the TensorView kernels take, and walking them.
#pragma once

#include <cudnn.h>

#include "kernels.h"
#include "simcudnn.h"

namespace simcudnn {

// The descriptor as a 5-d view (trailing extents of 1). NOT_SUPPORTED above 5 dimensions: the
// simulated kernels index at most N, C, D, H, W.
cudnnStatus_t view_of(const cudnnTensorStruct* t, TensorView* v);

// `operand` seen with `target`'s extents: each of its dimensions must equal target's or be 1
// (then broadcast, stride 0). BAD_PARAM otherwise or when the ranks differ.
cudnnStatus_t broadcast_view(const cudnnTensorStruct* operand, const cudnnTensorStruct* target, TensorView* v);

inline long long offset_of(const TensorView& v, const int i[5]) {
  return (long long)i[0] * v.strides[0] + (long long)i[1] * v.strides[1] + (long long)i[2] * v.strides[2] +
         (long long)i[3] * v.strides[3] + (long long)i[4] * v.strides[4];
}

// Calls f(index) for every index of `dims`, last dimension fastest: the fixed element order.
template <class F>
void for_each_index(const int dims[5], F&& f) {
  int i[5];
  for (i[0] = 0; i[0] < dims[0]; ++i[0])
    for (i[1] = 0; i[1] < dims[1]; ++i[1])
      for (i[2] = 0; i[2] < dims[2]; ++i[2])
        for (i[3] = 0; i[3] < dims[3]; ++i[3])
          for (i[4] = 0; i[4] < dims[4]; ++i[4]) f(static_cast<const int*>(i));
}

inline void blend(float* out, float value, float alpha, float beta) {
  *out = beta == 0.0f ? alpha * value : alpha * value + beta * *out;
}

}  // namespace simcudnn
