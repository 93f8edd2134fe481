// oversub::trace::Writer: appends trace events from any thread, off the hot path.
//
// The calling thread formats each event straight into its own per-thread buffer
// (no lock, no allocation, no system call except clock_gettime's vDSO); a single
// background thread copies finished lines to the file. See
// Note [Per-thread trace buffers] in writer.cpp for the protocol and
// Note [Trace format] in format.h for what the lines mean.
//
// Lifetime: open() starts the writer thread; close() drains every buffer, writes
// the `x` end line, joins the thread and closes the file. close() is idempotent
// and safe to call from an atexit handler while other threads still append:
// events that race with or follow close() are dropped, never half-written.
// Destroying the Writer, however, requires that no thread is inside one of its
// methods any more; a preloaded shim should close() at exit and leak the object.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tracer/format.h"

namespace oversub::trace {

struct LogBuffer;  // writer.cpp

class Writer {
 public:
  // Creates (truncates) `path` and starts the writer thread. On failure returns
  // nullptr and sets *error to a message naming the file and the OS error.
  static std::unique_ptr<Writer> open(const std::string& path, std::string* error);

  ~Writer();  // close()s; see the lifetime rule above
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Definitions: cold, take a mutex, may allocate.
  void process(const ProcessInfo& info);
  void device(const DeviceInfo& info);
  // Interned: the first call for a string writes an `n` line, later calls return
  // the same id. Cost: one mutex + one hash lookup; callers on a hot path cache
  // the id (per CUfunction, per library entry point). Returns no_name after close.
  uint32_t name_id(std::string_view name);
  // Interned call site. On first sight each frame is symbolized with dladdr and
  // demangled into "module+0xoffset function" (itself interned as a name), which
  // is slow (microseconds per frame) but happens once per distinct stack.
  // count == 0 returns no_site.
  uint32_t site_id(const uintptr_t* frames, size_t count);

  // Events. Each returns its global sequence number (>= 1), or 0 if the event was
  // dropped (after close, or when a new buffer could not be allocated).
  // Cost: one relaxed fetch_add, one clock_gettime, ~100 ns of formatting.
  uint64_t alloc(uint64_t alloc_id, uint64_t address, uint64_t bytes, uint64_t stream, uint32_t site,
                 AllocKind kind);
  // The application asked to free (cudaFree, cudaFreeAsync): the memory may
  // still be in use by queued work.
  uint64_t free_requested(uint64_t alloc_id, uint64_t address, uint64_t stream);
  // The memory really went back (after the stream's pending work): live bytes drop here.
  uint64_t free_completed(uint64_t alloc_id, uint64_t address, uint64_t stream);
  uint64_t op(OpKind kind, uint32_t name, uint64_t stream, const Range* ranges, size_t count);
  // A copy is an op of kind copy: ranges say source (read) and destination (write).
  uint64_t copy(uint32_t name, uint64_t stream, CopyDirection direction, const Range* ranges, size_t count);
  // handle: the stream or event for stream/event syncs, 0 for a device sync.
  uint64_t sync(SyncKind kind, uint64_t handle);
  // Reserved for the residency engine; `reason` is a name id (e.g. "budget", "predicted").
  uint64_t evict(uint64_t chunk_address, uint64_t bytes, uint64_t stream, uint32_t reason);
  uint64_t prefetch(uint64_t chunk_address, uint64_t bytes, uint64_t stream, uint32_t reason);

  void close();

  // For a pthread_atfork child handler: the child has no writer thread and shares
  // the parent's file descriptor, so it must neither join nor write. Marks this
  // Writer closed in the calling process only. close() does the same by itself
  // when called in a process other than the one that opened the trace.
  void abandon_after_fork();

  // Events dropped so far because they arrived after close() or a buffer could
  // not be allocated; also written into the `x` end line.
  uint64_t dropped_events() const { return dropped_events_.load(std::memory_order_relaxed); }
  // The first write error the writer thread met ("" if none): the trace is then incomplete.
  std::string write_error() const;

 private:
  Writer(int fd, std::string path);

  template <class FormatLine>
  uint64_t append(size_t max_line_bytes, FormatLine&& format_line);
  LogBuffer* replace_thread_buffer(size_t min_bytes);
  void append_definition(std::string_view line);  // caller holds definitions_mutex_
  uint32_t intern_locked(std::string_view name);
  void run_writer_thread();
  void drain_once();
  void write_bytes(const char* data, size_t size);

  const uint64_t generation_;  // tells thread-local buffers of different Writers apart
  const int owner_pid_;        // the process whose writer thread owns fd_
  const int fd_;
  const std::string path_;

  std::atomic<uint64_t> next_seq_{1};
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> dropped_events_{0};

  // Interning and definition lines (`n`, `t`, `P`, `d`), in the order they were made.
  std::mutex definitions_mutex_;
  std::string pending_definitions_;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> names_;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> sites_;  // key: the frames' raw bytes
  std::unordered_map<uintptr_t, uint32_t> frame_names_;  // pc -> name id of its symbolized form
  uint32_t next_site_ = 1;
  bool process_written_ = false;  // a trace describes one process: later process() calls are ignored

  // Registered per-thread buffers; see Note [Per-thread trace buffers].
  std::mutex buffers_mutex_;
  std::vector<std::shared_ptr<LogBuffer>> buffers_;
  std::condition_variable wake_writer_;
  bool stop_writer_ = false;  // guarded by buffers_mutex_

  std::mutex close_mutex_;
  bool thread_joined_ = false;  // guarded by close_mutex_
  // A pointer so that a forked child can leak it: destroying a joinable std::thread
  // terminates, and the child can neither join nor detach its parent's thread.
  std::unique_ptr<std::thread> writer_thread_;

  // Touched only by the draining thread: the writer thread, then close() after the join.
  std::vector<std::shared_ptr<LogBuffer>> drain_snapshot_;
  mutable std::mutex write_error_mutex_;
  std::string write_error_;  // the first write failure; guarded by write_error_mutex_
};

// Fills frames[0..n) with the return addresses of the caller's stack, skipping
// the caller's own `skip` innermost frames (capture_call_site itself is never
// included). Returns n <= max. Uses libunwind's unw_backtrace: no allocation,
// a few hundred ns per frame.
size_t capture_call_site(uintptr_t* frames, size_t max, size_t skip);

}  // namespace oversub::trace
