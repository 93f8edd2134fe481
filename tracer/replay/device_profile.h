// Device profiles for `oversub-trace replay`: what a GPU and its host link can do.
//
// Note [Device profiles]
// ~~~~~~~~~~~~~~~~~~~~~~
// Every figure is a vendor specification (datasheet or whitepaper, named in
// docs/replay.md beside each profile); what a program really gets is a stated
// efficiency on top of it (Note [Roofline] in cost_model.h for compute, the
// `link_efficiency` here for copies). The profiles are data, not code: one table in
// device_profile.cpp, and docs/replay.md is tested against it
// (tests/unit/replay_profile_test.cpp), so the two cannot drift apart.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace oversub::replay {

struct DeviceProfile {
  std::string_view name;         // as on the command line: `h100-sxm`
  std::string_view description;  // one line: the card and its host link
  // Dense peak rates, FLOP/s. `matrix_*`: the tensor cores (or, on cards without them,
  // the FP32 units) for matrix products and convolutions; `vector_fp32`: the FP32 units,
  // for every other op.
  double matrix_fp32_flops;  // TF32 tensor cores where the card has them (Note [Roofline])
  double matrix_half_flops;  // BF16/FP16 tensor cores
  double vector_fp32_flops;
  double memory_bytes_per_s;  // HBM (or GDDR) bandwidth
  uint64_t memory_bytes;      // device memory size
  // The host link, per direction, as specified (PCIe x16 or NVLink).
  double link_bytes_per_s;
  // Share of link_bytes_per_s a pinned-memory copy gets in one direction alone.
  double link_efficiency;
  // Share of its one-way rate each direction keeps while the other one is busy too.
  double two_way_efficiency;
  int64_t copy_latency_ns;  // fixed cost of each copy (DMA setup), before its bytes flow
};

// Efficiencies of the roofline (Note [Roofline] in cost_model.h), the same on every card.
inline constexpr double matrix_efficiency = 0.7;  // cuBLAS/cuDNN: 60-80% of peak measured
inline constexpr double vector_efficiency = 0.5;  // other kernels' arithmetic
inline constexpr double memory_efficiency = 0.8;  // of HBM peak, for streaming kernels
inline constexpr int64_t op_overhead_ns = 3000;   // per op: launch and tail (Note [Roofline])

std::span<const DeviceProfile> device_profiles();
// The profile called `name`, or nullptr.
const DeviceProfile* find_device_profile(std::string_view name);

}  // namespace oversub::replay
