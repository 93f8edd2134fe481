// The roofline: Note [Roofline] in cost_model.h.
#include "tracer/replay/cost_model.h"

#include <algorithm>
#include <cmath>

namespace oversub::replay {

bool is_link_copy(const Op& op)
{
  return op.kind == trace::OpKind::copy && (op.direction == trace::CopyDirection::host_to_device ||
                                            op.direction == trace::CopyDirection::device_to_host);
}

bool is_host_to_device(const Op& op) { return op.direction == trace::CopyDirection::host_to_device; }

int64_t op_duration_ns(const Op& op, const DeviceProfile& device, bool half_precision)
{
  double memory_bytes = static_cast<double>(op.bytes_touched);
  double compute_s = 0;
  if (op.kind == trace::OpKind::copy) {
    memory_bytes = 2.0 * static_cast<double>(op.copy_bytes);
  } else if (op.flops) {
    const bool matrix = op.kind == trace::OpKind::cublas || op.kind == trace::OpKind::cudnn;
    const double rate = matrix ? (half_precision ? device.matrix_half_flops : device.matrix_fp32_flops) *
                                   matrix_efficiency
                               : device.vector_fp32_flops * vector_efficiency;
    compute_s = static_cast<double>(*op.flops) / rate;
  }
  const double memory_s = memory_bytes / (device.memory_bytes_per_s * memory_efficiency);
  return std::llround(std::max(compute_s, memory_s) * 1e9) + op_overhead_ns;
}

}  // namespace oversub::replay
