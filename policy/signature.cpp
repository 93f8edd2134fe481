// Op signatures: see Note [Op signature] in signature.h.
#include "policy/signature.h"

namespace oversub::policy {

uint64_t mix_hash(uint64_t seed, uint64_t value) noexcept
{
  uint64_t z = seed ^ (value + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

OpSignature op_signature(const OpEvent& op, const AllocBytesLookup& alloc_bytes)
{
  uint64_t h = mix_hash(0x6f70736967ULL, static_cast<uint64_t>(op.kind));
  h = mix_hash(h, op.name);
  h = mix_hash(h, op.stream);
  for (const Access& a : op.accesses.items()) {
    h = mix_hash(h, alloc_bytes ? alloc_bytes(a.alloc_id) : 0);
    h = mix_hash(h, (uint64_t{a.chunk_first} << 32) | a.chunk_count);
    h = mix_hash(h, static_cast<uint64_t>(a.mode));
  }
  return h;
}

}  // namespace oversub::policy
