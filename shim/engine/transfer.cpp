// Copy and memset family: the exact bytes a copy reads and writes.
#include "engine.h"

namespace oversub {
namespace {

trace::CopyDirection direction_of(bool dst_device, bool src_device) {
  if (dst_device && src_device) return trace::CopyDirection::device_to_device;
  if (dst_device) return trace::CopyDirection::host_to_device;
  if (src_device) return trace::CopyDirection::device_to_host;
  return trace::CopyDirection::host_to_host;
}

bool tracked(std::uint64_t address) {
  Allocation a;
  return address_map().find(address, &a);
}

std::uint32_t copy_name(trace::CopyDirection d) {
  static const std::uint32_t names[] = {intern_name("memcpy_h2d"), intern_name("memcpy_d2h"),
                                        intern_name("memcpy_d2d"), intern_name("memcpy_h2h"),
                                        intern_name("memcpy"), intern_name("memcpy")};
  return names[static_cast<int>(d)];
}

}  // namespace

trace::CopyDirection observe_copy(std::uint64_t dst, std::uint64_t src, std::uint64_t bytes, CUstream stream,
                                  RangeList& ranges) {
  if (bytes == 0) return trace::CopyDirection::none;
  add_exact_range(ranges, src, bytes, Access::read);
  add_exact_range(ranges, dst, bytes, Access::write);
  const auto direction = direction_of(tracked(dst), tracked(src));
  record_op(OpKind::copy, copy_name(direction), stream, ranges, direction);
  return direction;
}

trace::CopyDirection observe_copy_2d(const CUDA_MEMCPY2D* p, CUstream stream, RangeList& ranges) {
  if (p == nullptr || p->WidthInBytes == 0 || p->Height == 0) return trace::CopyDirection::none;
  auto device_side = [](CUmemorytype type, CUdeviceptr device, const void* host, std::uint64_t* address) {
    *address = type == CU_MEMORYTYPE_HOST ? reinterpret_cast<std::uint64_t>(host) : device;
    return type != CU_MEMORYTYPE_HOST && tracked(*address);
  };
  std::uint64_t src = 0, dst = 0;
  const bool src_device = device_side(p->srcMemoryType, p->srcDevice, p->srcHost, &src);
  const bool dst_device = device_side(p->dstMemoryType, p->dstDevice, p->dstHost, &dst);
  src += p->srcY * p->srcPitch + p->srcXInBytes;
  dst += p->dstY * p->dstPitch + p->dstXInBytes;
  // The span from the first byte of the first row to the last byte of the last row.
  add_exact_range(ranges, src, p->srcPitch * (p->Height - 1) + p->WidthInBytes, Access::read);
  add_exact_range(ranges, dst, p->dstPitch * (p->Height - 1) + p->WidthInBytes, Access::write);
  const auto direction = direction_of(dst_device, src_device);
  record_op(OpKind::copy, copy_name(direction), stream, ranges, direction);
  return direction;
}

void observe_memset(std::uint64_t dst, std::uint64_t pitch_bytes, std::uint64_t width_bytes, std::uint64_t height,
                    CUstream stream, RangeList& ranges) {
  if (width_bytes == 0 || height == 0) return;
  static const std::uint32_t name = intern_name("memset");
  add_exact_range(ranges, dst, pitch_bytes * (height - 1) + width_bytes, Access::write);
  record_op(OpKind::memset, name, stream, ranges);
}

}  // namespace oversub
