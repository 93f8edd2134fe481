// Stack capture (libunwind) and frame symbolization (dladdr + __cxa_demangle).
#include "tracer/call_site.h"

#include <cxxabi.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>

#include "tracer/line_format.h"
#include "tracer/writer.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

namespace oversub::trace {
namespace {

// Bounds the stack array in capture_call_site; deeper requests are clamped.
constexpr size_t max_capture_frames = 128;

}  // namespace

size_t capture_call_site(uintptr_t* frames, size_t max, size_t skip)
{
  // +1: unw_backtrace's first entry is capture_call_site itself.
  const size_t want = std::min(max_capture_frames, std::min(max, max_capture_frames) + skip + 1);
  void* raw[max_capture_frames];
  const int got = unw_backtrace(raw, static_cast<int>(want));
  if (got <= 0) return 0;
  const size_t first = skip + 1;
  size_t count = 0;
  for (size_t i = first; i < static_cast<size_t>(got) && count < max; ++i) {
    frames[count++] = reinterpret_cast<uintptr_t>(raw[i]);
  }
  return count;
}

std::string describe_frame(uintptr_t pc)
{
  // Every captured frame is a return address: the call instruction ends just
  // before it, and when the call is a function's last instruction pc already
  // belongs to the next function. So look pc - 1 up, but print pc's offset.
  Dl_info info{};
  const bool found = pc != 0 && dladdr(reinterpret_cast<void*>(pc - 1), &info) != 0;
  std::string text;
  if (found && info.dli_fname != nullptr && info.dli_fname[0] != '\0') {
    text += info.dli_fname;
  } else {
    text += '?';
  }
  text += "+0x";
  const uintptr_t base = found ? reinterpret_cast<uintptr_t>(info.dli_fbase) : 0;
  line_format::append_hex(text, pc - base);
  text += ' ';
  if (found && info.dli_sname != nullptr) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    text += status == 0 && demangled != nullptr ? demangled : info.dli_sname;
    std::free(demangled);
  } else {
    text += '?';
  }
  return text;
}

}  // namespace oversub::trace
