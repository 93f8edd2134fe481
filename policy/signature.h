// What makes two ops "the same op" from one training step to the next.
//
// Note [Op signature]
// ~~~~~~~~~~~~~~~~~~~
// An op's signature hashes its kind, name and stream, and a shape hash of the ranges it
// touches: for each access in order, the byte size of the allocation, the chunk range
// and the access mode. Allocation ids are deliberately left out: activations are
// allocated anew every step, so their ids never repeat, but their sizes do. Sizes are in
// so that a change of input shape (a new resolution, a longer sequence) yields new
// signatures and the iteration detector relearns instead of mispredicting.
//
// The signature is a 64-bit hash, so two different ops may collide. That only costs
// prediction quality (the detector verifies repeats signature by signature, not hash by
// hash of windows), never correctness of what the shim does with memory.
#pragma once

#include <cstdint>
#include <functional>

#include "policy/events.h"

namespace oversub::policy {

using OpSignature = uint64_t;

// Byte size of a live allocation, or 0 for one the policy does not know (not ours).
using AllocBytesLookup = std::function<uint64_t(AllocId)>;

// A well-mixed 64-bit combine (splitmix64 finaliser over a multiply-xor chain).
// Cost: a few multiplies. Deterministic across runs and platforms.
uint64_t mix_hash(uint64_t seed, uint64_t value) noexcept;

// Cost: one lookup and a few multiplies per access.
OpSignature op_signature(const OpEvent& op, const AllocBytesLookup& alloc_bytes);

}  // namespace oversub::policy
