// gzip inflation for the trace reader (see gzip_input.h), with zlib.
#include "tracer/gzip_input.h"

#include <zlib.h>

#include <climits>
#include <new>

namespace oversub::trace {

bool looks_gzipped(std::string_view bytes)
{
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

std::optional<std::string> gunzip(std::string_view compressed, std::string* out)
{
  z_stream stream{};
  // 16 + MAX_WBITS: expect the gzip wrapper (header and CRC), not raw zlib.
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) return std::string("cannot start zlib's inflate");
  std::optional<std::string> error;
  const auto* next = reinterpret_cast<const unsigned char*>(compressed.data());
  size_t left = compressed.size();
  char buffer[256 * 1024];
  try {
    int status = Z_OK;
    while (true) {
      if (stream.avail_in == 0 && left > 0) {
        const size_t chunk = std::min<size_t>(left, UINT_MAX);
        stream.next_in = const_cast<unsigned char*>(next);  // zlib's API is not const-correct
        stream.avail_in = static_cast<uInt>(chunk);
        next += chunk;
        left -= chunk;
      }
      stream.next_out = reinterpret_cast<unsigned char*>(buffer);
      stream.avail_out = sizeof buffer;
      status = inflate(&stream, Z_NO_FLUSH);
      out->append(buffer, sizeof buffer - stream.avail_out);
      if (status == Z_STREAM_END) {
        if (stream.avail_in == 0 && left == 0) break;
        if (inflateReset(&stream) != Z_OK) {  // another member follows
          error = "cannot restart zlib's inflate for the next gzip member";
          break;
        }
        continue;
      }
      if (status == Z_BUF_ERROR && stream.avail_in == 0 && left == 0) {
        error = "the gzip stream ends early (the file was cut short)";
        break;
      }
      if (status != Z_OK && status != Z_BUF_ERROR) {
        error = std::string("corrupt gzip data: ") + (stream.msg ? stream.msg : "inflate failed");
        break;
      }
    }
  } catch (const std::bad_alloc&) {
    error = "not enough memory for the inflated trace";
  }
  inflateEnd(&stream);
  return error;
}

}  // namespace oversub::trace
