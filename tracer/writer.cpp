// The trace writer: per-thread buffers, interning, and the background file writer.
//
// Note [Per-thread trace buffers]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Appending must cost the calling thread (a CUDA hook) almost nothing
// (CONVENTIONS.md 5 and 6), so each thread owns a LogBuffer that only it writes:
//   - it formats a whole line at `used_bytes`, then publishes it with a release
//     store of `committed_bytes`. Bytes below committed_bytes never change again,
//     so the writer thread may copy them out at any time without a lock;
//   - when a line does not fit, the thread marks the buffer `sealed` (after its
//     last commit) and registers a fresh one under buffers_mutex_: the only lock and
//     the only allocation an appending thread ever takes;
//   - at thread exit the thread_local ThreadSlot's destructor seals the buffer;
//     the writer thread flushes what is left and then frees it, so nothing an
//     exited thread wrote is lost and dead threads do not pin memory.
// The writer thread wakes every flush_interval (or when a buffer is sealed),
// copies each buffer's newly committed bytes to the file, and drops buffers that
// are sealed and fully flushed. Lines are never split: a line is committed whole.
//
// Ordering. Sequence numbers come from one atomic counter, so `seq` is the global
// order; the file holds each buffer's lines in runs, so readers sort by seq.
// Definitions (`n`, `t`, `P`, `d`) instead go to one mutex-protected string in
// creation order. Each drain first snapshots every buffer's committed_bytes
// (acquire), THEN takes the pending definitions: an event in the snapshot was
// committed after the name_id()/site_id() call that made its ids returned, so
// its definitions are already pending and are written before it.
//
// Buffers are shared_ptr-owned by both the registry and the ThreadSlot so that a
// slot outliving its Writer (tests open many) or a Writer outliving a thread
// never touches freed memory; the reference counts change only on the cold paths.
#include "tracer/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <new>
#include <string_view>

#include "tracer/call_site.h"
#include "tracer/line_format.h"

namespace oversub::trace {

using namespace line_format;

struct LogBuffer {
  explicit LogBuffer(size_t capacity) : data(new char[capacity]), capacity_bytes(capacity) {}
  std::unique_ptr<char[]> data;
  const size_t capacity_bytes;
  size_t used_bytes = 0;  // owner thread only
  std::atomic<size_t> committed_bytes{0};
  std::atomic<bool> sealed{false};  // set by the owner after its last commit
  size_t flushed_bytes = 0;         // writer thread only
};

namespace {

// 64 KiB holds ~1000 typical lines: at a million events per second that is one
// buffer switch (a lock and an allocation) per millisecond per busy thread.
constexpr size_t default_buffer_bytes = 64 * 1024;
constexpr std::chrono::milliseconds flush_interval{20};
// Worst case of every fixed-shape line: tag, up to 12 numeric/word fields, newline.
constexpr size_t fixed_line_bytes = 1 + 12 * max_field_bytes + 1;
constexpr size_t range_bytes = 2 * max_field_bytes + 3;  // " address bytes rw"

std::atomic<uint64_t> next_generation{1};

struct ThreadSlot {
  uint64_t generation = 0;  // the Writer that `buffer` belongs to
  std::shared_ptr<LogBuffer> buffer;
  uint64_t tid = 0;
  ~ThreadSlot();
};

thread_local ThreadSlot tls_slot;
// Trivially destructible, so still readable while and after tls_slot is destroyed:
// other thread_local destructors (a framework freeing memory) may still trace.
thread_local bool tls_slot_destroyed = false;

ThreadSlot::~ThreadSlot()
{
  if (buffer) buffer->sealed.store(true, std::memory_order_release);
  tls_slot_destroyed = true;
}

uint64_t now_ns()
{
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: ~20 ns, no system call
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t current_tid()
{
  if (!tls_slot_destroyed && tls_slot.tid != 0) return tls_slot.tid;
  const auto tid = static_cast<uint64_t>(::gettid());
  if (!tls_slot_destroyed) tls_slot.tid = tid;
  return tid;
}

char* put_event_header(char* out, char tag, uint64_t seq, uint64_t ts_ns, uint64_t tid)
{
  out = put_char(out, tag);
  out = put_field(out, seq);
  out = put_field(out, ts_ns);
  return put_field(out, tid);
}

char* put_ranges(char* out, const Range* ranges, size_t count)
{
  out = put_field(out, count);
  for (size_t i = 0; i < count; ++i) {
    out = put_field(out, ranges[i].address);
    out = put_field(out, ranges[i].bytes);
    out = put_word(out, to_word(ranges[i].access));
  }
  return out;
}

}  // namespace

std::unique_ptr<Writer> Writer::open(const std::string& path, std::string* error)
{
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = "cannot create trace file '" + path + "': " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<Writer> writer(new Writer(fd, path));
  try {
    writer->writer_thread_ = std::make_unique<std::thread>([w = writer.get()] { w->run_writer_thread(); });
  } catch (const std::system_error& e) {
    if (error) *error = "cannot start the trace writer thread for '" + path + "': " + e.what();
    writer->thread_joined_ = true;  // nothing to join; the destructor only closes fd
    ::close(fd);
    return nullptr;
  }
  return writer;
}

Writer::Writer(int fd, std::string path)
    : generation_(next_generation.fetch_add(1, std::memory_order_relaxed)),
      owner_pid_(::getpid()),
      fd_(fd),
      path_(std::move(path))
{
  pending_definitions_ = "v ";
  append_hex(pending_definitions_, format_version);
  pending_definitions_ += ' ';
  pending_definitions_ += format_magic;
  pending_definitions_ += '\n';
}

Writer::~Writer() { close(); }

std::string Writer::write_error() const
{
  std::lock_guard lock(write_error_mutex_);
  return write_error_;
}

// ---- Definitions (cold) ----

uint32_t Writer::intern_locked(std::string_view name)
{
  if (auto it = names_.find(name); it != names_.end()) return it->second;
  const auto id = static_cast<uint32_t>(names_.size() + 1);
  names_.emplace(std::string(name), id);
  pending_definitions_ += "n ";
  append_hex(pending_definitions_, id);
  pending_definitions_ += ' ';
  append_escaped(pending_definitions_, name);
  pending_definitions_ += '\n';
  return id;
}

uint32_t Writer::name_id(std::string_view name)
{
  // Checked before locking too: after fork the child may inherit a locked mutex.
  if (closed_.load(std::memory_order_acquire)) return no_name;
  std::lock_guard lock(definitions_mutex_);
  if (closed_.load(std::memory_order_acquire)) return no_name;
  return intern_locked(name);
}

uint32_t Writer::site_id(const uintptr_t* frames, size_t count)
{
  if (count == 0) return no_site;
  const std::string_view key(reinterpret_cast<const char*>(frames), count * sizeof(uintptr_t));
  std::vector<uintptr_t> unknown_pcs;
  if (closed_.load(std::memory_order_acquire)) return no_site;
  {
    std::lock_guard lock(definitions_mutex_);
    if (closed_.load(std::memory_order_acquire)) return no_site;
    if (auto it = sites_.find(key); it != sites_.end()) return it->second;
    for (size_t i = 0; i < count; ++i) {
      if (!frame_names_.contains(frames[i])) unknown_pcs.push_back(frames[i]);
    }
  }
  // Note [Symbolize outside the lock]: dladdr takes the dynamic loader's lock. A
  // library constructor running inside dlopen holds that lock and may allocate
  // device memory, i.e. trace; symbolizing under definitions_mutex_ could then
  // deadlock (ABBA). Two threads may symbolize the same pc; the first one wins.
  std::vector<std::string> descriptions;
  descriptions.reserve(unknown_pcs.size());
  for (uintptr_t pc : unknown_pcs) descriptions.push_back(describe_frame(pc));

  std::lock_guard lock(definitions_mutex_);
  if (closed_.load(std::memory_order_acquire)) return no_site;
  if (auto it = sites_.find(key); it != sites_.end()) return it->second;
  for (size_t i = 0; i < unknown_pcs.size(); ++i) {
    frame_names_.try_emplace(unknown_pcs[i], intern_locked(descriptions[i]));
  }
  const uint32_t id = next_site_++;
  sites_.emplace(std::string(key), id);
  std::string line = "t ";
  append_hex(line, id);
  line += ' ';
  append_hex(line, count);
  for (size_t i = 0; i < count; ++i) {
    line += ' ';
    append_hex(line, frame_names_.at(frames[i]));
  }
  line += '\n';
  append_definition(line);
  return id;
}

void Writer::append_definition(std::string_view line) { pending_definitions_ += line; }

void Writer::process(const ProcessInfo& info)
{
  if (closed_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(definitions_mutex_);
  if (closed_.load(std::memory_order_acquire) || process_written_) return;
  process_written_ = true;
  const uint32_t strings[] = {intern_locked(info.executable), intern_locked(info.command_line),
                              intern_locked(info.oversub_version), intern_locked(info.mode),
                              intern_locked(info.policy)};
  std::string line = "P ";
  append_hex(line, info.pid);
  for (uint64_t value : {info.start_unix_ns, info.start_monotonic_ns}) {
    line += ' ';
    append_hex(line, value);
  }
  for (uint32_t id : strings) {
    line += ' ';
    append_hex(line, id);
  }
  line += '\n';
  append_definition(line);
}

void Writer::device(const DeviceInfo& info)
{
  if (closed_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(definitions_mutex_);
  if (closed_.load(std::memory_order_acquire)) return;
  const uint32_t name = intern_locked(info.name);
  std::string line = "d ";
  append_hex(line, info.ordinal);
  for (uint64_t value : {uint64_t{name}, info.total_bytes, uint64_t{info.compute_major}, uint64_t{info.compute_minor}}) {
    line += ' ';
    append_hex(line, value);
  }
  line += '\n';
  append_definition(line);
}

// ---- Events (hot) ----

template <class FormatLine>
uint64_t Writer::append(size_t max_line_bytes, FormatLine&& format_line)
{
  if (closed_.load(std::memory_order_acquire)) {
    dropped_events_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  if (tls_slot_destroyed) [[unlikely]] {
    // This thread's slot is gone (we are in a later thread_local destructor):
    // format on the heap and queue the line with the definitions. Rare and cold.
    std::string line(max_line_bytes, '\0');
    const uint64_t seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
    char* end = format_line(line.data(), seq, now_ns(), current_tid());
    line.resize(static_cast<size_t>(end - line.data()));
    std::lock_guard lock(definitions_mutex_);
    append_definition(line);
    return seq;
  }
  ThreadSlot& slot = tls_slot;
  LogBuffer* buffer = slot.generation == generation_ ? slot.buffer.get() : nullptr;
  if (buffer == nullptr || buffer->capacity_bytes - buffer->used_bytes < max_line_bytes) [[unlikely]] {
    buffer = replace_thread_buffer(max_line_bytes);
    if (buffer == nullptr) {
      dropped_events_.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
  }
  const uint64_t seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
  char* begin = buffer->data.get() + buffer->used_bytes;
  char* end = format_line(begin, seq, now_ns(), current_tid());
  buffer->used_bytes += static_cast<size_t>(end - begin);
  buffer->committed_bytes.store(buffer->used_bytes, std::memory_order_release);
  return seq;
}

LogBuffer* Writer::replace_thread_buffer(size_t min_bytes)
{
  ThreadSlot& slot = tls_slot;
  if (slot.buffer) {
    slot.buffer->sealed.store(true, std::memory_order_release);
    if (slot.generation == generation_) wake_writer_.notify_one();
    slot.buffer.reset();
    slot.generation = 0;
  }
  std::shared_ptr<LogBuffer> fresh;
  try {
    fresh = std::make_shared<LogBuffer>(std::max(default_buffer_bytes, min_bytes));
  } catch (const std::bad_alloc&) {
    return nullptr;  // dropping one event beats failing the application's call
  }
  {
    std::lock_guard lock(buffers_mutex_);
    if (stop_writer_) return nullptr;
    buffers_.push_back(fresh);
  }
  slot.buffer = std::move(fresh);
  slot.generation = generation_;
  return slot.buffer.get();
}

uint64_t Writer::alloc(uint64_t alloc_id, uint64_t address, uint64_t bytes, uint64_t stream, uint32_t site,
                       AllocKind kind)
{
  return append(fixed_line_bytes, [&](char* out, uint64_t seq, uint64_t ts_ns, uint64_t tid) {
    out = put_event_header(out, tag::alloc, seq, ts_ns, tid);
    out = put_field(out, alloc_id);
    out = put_field(out, address);
    out = put_field(out, bytes);
    out = put_field(out, stream);
    out = put_field(out, site);
    out = put_word(out, to_word(kind));
    return put_char(out, '\n');
  });
}

uint64_t Writer::free_requested(uint64_t alloc_id, uint64_t address, uint64_t stream)
{
  return append(fixed_line_bytes, [&](char* out, uint64_t seq, uint64_t ts_ns, uint64_t tid) {
    out = put_event_header(out, tag::free_requested, seq, ts_ns, tid);
    out = put_field(out, alloc_id);
    out = put_field(out, address);
    out = put_field(out, stream);
    return put_char(out, '\n');
  });
}

uint64_t Writer::free_completed(uint64_t alloc_id, uint64_t address, uint64_t stream)
{
  return append(fixed_line_bytes, [&](char* out, uint64_t seq, uint64_t ts_ns, uint64_t tid) {
    out = put_event_header(out, tag::free_completed, seq, ts_ns, tid);
    out = put_field(out, alloc_id);
    out = put_field(out, address);
    out = put_field(out, stream);
    return put_char(out, '\n');
  });
}

uint64_t Writer::op(OpKind kind, uint32_t name, uint64_t stream, const Range* ranges, size_t count)
{
  const CopyDirection direction = kind == OpKind::copy ? CopyDirection::unknown : CopyDirection::none;
  return append(fixed_line_bytes + count * range_bytes, [&](char* out, uint64_t seq, uint64_t ts_ns, uint64_t tid) {
    out = put_event_header(out, tag::op, seq, ts_ns, tid);
    out = put_word(out, to_word(kind));
    out = put_field(out, name);
    out = put_field(out, stream);
    out = put_word(out, to_word(direction));
    out = put_ranges(out, ranges, count);
    return put_char(out, '\n');
  });
}

uint64_t Writer::copy(uint32_t name, uint64_t stream, CopyDirection direction, const Range* ranges, size_t count)
{
  // A copy always has a direction; `none` would make the line unreadable.
  if (direction == CopyDirection::none) direction = CopyDirection::unknown;
  return append(fixed_line_bytes + count * range_bytes, [&](char* out, uint64_t seq, uint64_t ts_ns, uint64_t tid) {
    out = put_event_header(out, tag::op, seq, ts_ns, tid);
    out = put_word(out, to_word(OpKind::copy));
    out = put_field(out, name);
    out = put_field(out, stream);
    out = put_word(out, to_word(direction));
    out = put_ranges(out, ranges, count);
    return put_char(out, '\n');
  });
}

uint64_t Writer::sync(SyncKind kind, uint64_t handle)
{
  return append(fixed_line_bytes, [&](char* out, uint64_t seq, uint64_t ts_ns, uint64_t tid) {
    out = put_event_header(out, tag::sync, seq, ts_ns, tid);
    out = put_word(out, to_word(kind));
    out = put_field(out, handle);
    return put_char(out, '\n');
  });
}

uint64_t Writer::evict(uint64_t chunk_address, uint64_t bytes, uint64_t stream, uint32_t reason)
{
  return append(fixed_line_bytes, [&](char* out, uint64_t seq, uint64_t ts_ns, uint64_t tid) {
    out = put_event_header(out, tag::evict, seq, ts_ns, tid);
    out = put_field(out, chunk_address);
    out = put_field(out, bytes);
    out = put_field(out, stream);
    out = put_field(out, reason);
    return put_char(out, '\n');
  });
}

uint64_t Writer::prefetch(uint64_t chunk_address, uint64_t bytes, uint64_t stream, uint32_t reason)
{
  return append(fixed_line_bytes, [&](char* out, uint64_t seq, uint64_t ts_ns, uint64_t tid) {
    out = put_event_header(out, tag::prefetch, seq, ts_ns, tid);
    out = put_field(out, chunk_address);
    out = put_field(out, bytes);
    out = put_field(out, stream);
    out = put_field(out, reason);
    return put_char(out, '\n');
  });
}

// ---- The writer thread and close ----

void Writer::run_writer_thread()
{
  std::unique_lock lock(buffers_mutex_);
  while (!stop_writer_) {
    wake_writer_.wait_for(lock, flush_interval);
    lock.unlock();
    drain_once();
    lock.lock();
  }
  lock.unlock();
  drain_once();  // everything committed before close() set stop_writer_
}

void Writer::drain_once()
{
  {
    std::lock_guard lock(buffers_mutex_);
    drain_snapshot_ = buffers_;
  }
  // Snapshot committed ends before taking definitions: see the ordering paragraph
  // of Note [Per-thread trace buffers]. `sealed` is read first so that a sealed
  // buffer's committed end is known to be final.
  struct Slice {
    bool sealed;
    size_t end_bytes;
  };
  std::vector<Slice> slices(drain_snapshot_.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    slices[i].sealed = drain_snapshot_[i]->sealed.load(std::memory_order_acquire);
    slices[i].end_bytes = drain_snapshot_[i]->committed_bytes.load(std::memory_order_acquire);
  }
  std::string definitions;
  {
    std::lock_guard lock(definitions_mutex_);
    definitions.swap(pending_definitions_);
  }
  write_bytes(definitions.data(), definitions.size());

  bool any_finished = false;
  for (size_t i = 0; i < slices.size(); ++i) {
    LogBuffer& buffer = *drain_snapshot_[i];
    write_bytes(buffer.data.get() + buffer.flushed_bytes, slices[i].end_bytes - buffer.flushed_bytes);
    buffer.flushed_bytes = slices[i].end_bytes;
    any_finished |= slices[i].sealed;
  }
  if (any_finished) {
    std::lock_guard lock(buffers_mutex_);
    std::erase_if(buffers_, [](const std::shared_ptr<LogBuffer>& b) {
      return b->sealed.load(std::memory_order_acquire) && b->flushed_bytes == b->committed_bytes.load(std::memory_order_acquire);
    });
  }
  drain_snapshot_.clear();
}

void Writer::write_bytes(const char* data, size_t size)
{
  std::lock_guard lock(write_error_mutex_);
  if (!write_error_.empty()) return;  // keep the first error; later bytes would leave a hole
  while (size > 0) {
    const ssize_t n = ::write(fd_, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_error_ = "cannot write trace file '" + path_ + "': " + std::strerror(n < 0 ? errno : EIO);
      return;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void Writer::abandon_after_fork()
{
  if (::getpid() == owner_pid_) {
    close();  // not a child: the ordinary, complete close
    return;
  }
  closed_.store(true, std::memory_order_release);
  // No close_mutex_ here: another thread may have held it at fork time.
  thread_joined_ = true;
  (void)writer_thread_.release();
}

void Writer::close()
{
  if (::getpid() != owner_pid_) {
    // A forked child calling exit(): the writer thread exists only in the parent
    // and the descriptor is the parent's; joining would hang, writing would corrupt.
    abandon_after_fork();
    return;
  }
  std::lock_guard close_lock(close_mutex_);
  if (thread_joined_) return;
  closed_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(buffers_mutex_);
    stop_writer_ = true;
  }
  wake_writer_.notify_one();
  writer_thread_->join();
  // Definitions made by callers that passed the closed_ check just before it was
  // set are still pending; write them so no event refers to a missing id.
  drain_once();
  std::string end_line = "x ";
  append_hex(end_line, now_ns());
  end_line += ' ';
  append_hex(end_line, dropped_events());
  end_line += '\n';
  write_bytes(end_line.data(), end_line.size());
  ::close(fd_);
  thread_joined_ = true;
}

}  // namespace oversub::trace
