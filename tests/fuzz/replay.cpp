// Fuzz target: `oversub-trace replay` on whatever the trace reader accepts. The
// bytes are parsed as a trace (plain or gzip); a trace that parses is built into a
// replay workload (which may reject it with an error of its own) and replayed under
// two budgets with every policy, on one device profile. tests/fuzz/README.md says
// how to run it.
//
// Beyond "no crash, no UB, no leak, no hang", it checks the replay's promises
// (Note [Replay results], Note [Lower bound] in tracer/replay/replay.h):
//  - a workload error is one line with a line number, like the reader's;
//  - a replay that ran is never faster than unlimited memory, and at a budget that
//    holds the footprint no policy moves a byte;
//  - the measured step's peak device bytes never exceed the budget;
//  - `unlimited` moves nothing.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "policy/events.h"
#include "tracer/reader.h"
#include "tracer/replay/device_profile.h"
#include "tracer/replay/policies.h"
#include "tracer/replay/replay.h"
#include "tracer/replay/workload.h"

namespace {

using namespace oversub;

void require(bool condition, const char* what)
{
  if (condition) return;
  std::fprintf(stderr, "replay fuzz target: broken promise: %s\n", what);
  std::abort();
}

// Keeps one input's replay short: libFuzzer's inputs can describe long traces or
// terabyte allocations, whose replay takes time in proportion (the engine keeps
// state per 2 MiB chunk), and a slow input is a timeout, not a finding. 2^17
// chunks is 256 GiB, more than any device profile's memory.
constexpr size_t max_items = 20000;
constexpr uint64_t max_footprint_chunks = uint64_t{1} << 17;

constexpr replay::PolicyKind policies[] = {
    replay::PolicyKind::unlimited, replay::PolicyKind::lru,       replay::PolicyKind::vdnn,
    replay::PolicyKind::tflms,     replay::PolicyKind::lookahead, replay::PolicyKind::lookahead_prefetch,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
  const std::string_view contents(reinterpret_cast<const char*>(data), size);
  trace::Trace trace;
  if (trace::parse_trace_file(contents, "fuzz.trace", &trace)) return 0;  // the reader's own target covers errors
  replay::Workload workload;
  if (const std::optional<trace::ParseError> error = replay::build_workload(trace, "fuzz.trace", 1, &workload)) {
    const std::string text = error->to_string();
    require(!error->message.empty(), "a workload error has a message");
    require(text.find('\n') == std::string::npos, "a workload error is one line");
    return 0;
  }
  if (workload.items.size() > max_items || workload.footprint_chunks > max_footprint_chunks) return 0;
  const replay::DeviceProfile* device = replay::find_device_profile("h100-sxm");
  require(device != nullptr, "the h100-sxm profile exists");

  const uint64_t footprint = workload.footprint_chunks * policy::chunk_bytes;
  replay::ReplayOptions options;
  options.device = device;
  options.policy = replay::PolicyKind::unlimited;
  options.budget_bytes = footprint;
  const replay::ReplayResult unlimited = replay::run_replay(workload, options);
  if (!unlimited.ran) return 0;
  require(unlimited.bytes_h2d == 0 && unlimited.bytes_d2h == 0, "unlimited moves nothing");

  // A budget that holds the footprint, and half of it (at least one chunk).
  const uint64_t half = std::max<uint64_t>(footprint / 2, policy::chunk_bytes);
  for (const uint64_t budget : {footprint, half}) {
    for (const replay::PolicyKind policy : policies) {
      options.policy = policy;
      options.budget_bytes = budget;
      const replay::ReplayResult r = replay::run_replay(workload, options);
      if (!r.ran) {
        require(!r.failure.empty(), "a replay that could not run says why");
        continue;
      }
      require(r.step_ns >= unlimited.step_ns, "no policy beats unlimited memory");
      if (policy != replay::PolicyKind::unlimited)
        require(r.peak_device_bytes <= replay::budget_chunks(budget) * policy::chunk_bytes,
                "peak device bytes within the budget's chunks");
      if (budget >= footprint) require(r.bytes_h2d == 0 && r.bytes_d2h == 0, "a budget that fits moves nothing");
    }
  }
  return 0;
}
