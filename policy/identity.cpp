// Buffer identity: see Note [Logical buffers] in identity.h.
#include "policy/identity.h"

#include "policy/signature.h"

namespace oversub::policy {

size_t BufferIdentity::RecurringKeyHash::operator()(const RecurringKey& k) const noexcept
{
  uint64_t h = mix_hash(k.template_id, k.phase);
  h = mix_hash(h, k.site);
  h = mix_hash(h, k.bytes);
  return static_cast<size_t>(mix_hash(h, k.slot));
}

LogicalId BufferIdentity::new_buffer(const AllocEvent& alloc, bool recurring)
{
  const LogicalId id = next_id_++;
  buffers_[id] = LogicalBuffer{id, alloc.bytes, alloc.site, recurring, false};
  return id;
}

LogicalId BufferIdentity::on_alloc(const AllocEvent& alloc, std::optional<IterationPlace> place)
{
  if (live_.contains(alloc.alloc_id)) {
    on_free(alloc.alloc_id);  // a producer reused an id without a free: trust the new one
  }
  LogicalId id = no_logical;
  if (place) {
    for (uint32_t slot = 0; id == no_logical; ++slot) {
      const RecurringKey key{place->template_id, place->phase, alloc.site, alloc.bytes, slot};
      const auto it = recurring_.find(key);
      if (it == recurring_.end()) {
        id = new_buffer(alloc, true);
        recurring_.emplace(key, id);
      } else if (!buffers_.at(it->second).live) {
        id = it->second;
      }
    }
  } else {
    id = new_buffer(alloc, false);
  }
  buffers_.at(id).live = true;
  live_.emplace(alloc.alloc_id, id);
  return id;
}

void BufferIdentity::on_free(AllocId alloc_id)
{
  const auto it = live_.find(alloc_id);
  if (it == live_.end()) {
    return;  // not ours, or a double free the application will hear about from CUDA
  }
  LogicalBuffer& b = buffers_.at(it->second);
  b.live = false;
  if (!b.recurring) {
    buffers_.erase(it->second);
  }
  live_.erase(it);
}

std::optional<LogicalId> BufferIdentity::logical_id(AllocId alloc_id) const
{
  const auto it = live_.find(alloc_id);
  if (it == live_.end()) {
    return std::nullopt;
  }
  return it->second;
}

uint64_t BufferIdentity::alloc_bytes(AllocId alloc_id) const
{
  const auto it = live_.find(alloc_id);
  return it == live_.end() ? 0 : buffers_.at(it->second).bytes;
}

const LogicalBuffer* BufferIdentity::buffer(LogicalId id) const
{
  const auto it = buffers_.find(id);
  return it == buffers_.end() ? nullptr : &it->second;
}

void BufferIdentity::forget_template(TemplateId id)
{
  std::erase_if(recurring_, [&](const auto& entry) {
    if (entry.first.template_id != id) {
      return false;
    }
    const auto b = buffers_.find(entry.second);
    if (b != buffers_.end() && !b->second.live) {
      buffers_.erase(b);
    } else if (b != buffers_.end()) {
      b->second.recurring = false;  // erased when freed, like a fresh buffer
    }
    return true;
  });
}

}  // namespace oversub::policy
