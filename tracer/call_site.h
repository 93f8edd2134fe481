// Call-site capture and symbolization for the trace writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace oversub::trace {

// "module+0xoffset function" for one return address: the module is the path
// dladdr reports, the offset is pc minus the module's load base (what addr2line
// wants), the function is demangled. Unknown parts print as "?". Slow (dladdr
// takes the loader lock; demangling allocates): call it once per distinct pc,
// never with a lock held that a library constructor could also want.
std::string describe_frame(uintptr_t pc);

}  // namespace oversub::trace
