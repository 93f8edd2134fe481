// How long an op takes on a device, from the FLOPs and bytes the trace gives it.
//
// Note [Roofline]
// ~~~~~~~~~~~~~~~
// An op takes max(FLOPs / compute rate, bytes touched / memory rate) + op_overhead_ns:
//  - the compute rate of a cuBLAS or cuDNN op (matrix products, convolutions, batch
//    norm) is the matrix peak times matrix_efficiency: TF32 tensor cores for fp32
//    traces (what cuDNN uses for fp32 convolutions by default, and cuBLAS with
//    allow_tf32), BF16/FP16 for half-precision traces (metadata `dtype`); on cards
//    without tensor cores the FP32 units. Every other op uses the FP32 vector peak
//    times vector_efficiency. An op without a `c` line has no compute term.
//  - bytes touched is the sum of the op's ranges (a range read and written counts
//    once: the trace gives one range with access rw), at the memory peak times
//    memory_efficiency.
//  - op_overhead_ns is the launch and tail of a kernel that the roofline does not see;
//    it dominates tiny ops, as on a real GPU.
// A copy between host and device is not an op of the roofline: it runs on a copy
// engine (Note [Replay time] in simulator.h). A device-to-device copy touches its
// bytes twice (read and write).
#pragma once

#include <cstdint>

#include "tracer/replay/device_profile.h"
#include "tracer/replay/workload.h"

namespace oversub::replay {

int64_t op_duration_ns(const Op& op, const DeviceProfile& device, bool half_precision);

// Whether the op runs on a copy engine, and which way.
bool is_link_copy(const Op& op);
bool is_host_to_device(const Op& op);

}  // namespace oversub::replay
