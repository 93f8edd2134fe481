// The PNG writer: Note [Stored-block PNG] in png.h.
#include "tracer/png.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace oversub::trace::png {
namespace {

constexpr std::array<uint32_t, 256> make_crc_table()
{
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> crc_table = make_crc_table();

void put_u32_be(std::string& out, uint32_t value)
{
  out.push_back(static_cast<char>(value >> 24));
  out.push_back(static_cast<char>(value >> 16));
  out.push_back(static_cast<char>(value >> 8));
  out.push_back(static_cast<char>(value));
}

void put_chunk(std::string& out, const char (&type)[5], const std::string& data)
{
  put_u32_be(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  out.append(type, 4);
  out.append(data);
  const auto* bytes = reinterpret_cast<const uint8_t*>(out.data() + start);
  put_u32_be(out, crc32(bytes, out.size() - start));
}

// The zlib stream of `raw` in stored deflate blocks.
std::string zlib_stored(const std::vector<uint8_t>& raw)
{
  std::string out;
  out.reserve(raw.size() + raw.size() / max_stored_block * 5 + 16);
  out.push_back(static_cast<char>(0x78));  // CMF: deflate, 32 KiB window
  out.push_back(static_cast<char>(0x01));  // FLG: no dictionary; 0x7801 % 31 == 0
  size_t offset = 0;
  do {
    const size_t length = std::min(max_stored_block, raw.size() - offset);
    const bool final = offset + length == raw.size();
    out.push_back(static_cast<char>(final ? 1 : 0));  // BFINAL, BTYPE 00
    const uint16_t len = static_cast<uint16_t>(length);
    const uint16_t nlen = static_cast<uint16_t>(~len);
    out.push_back(static_cast<char>(len & 0xff));
    out.push_back(static_cast<char>(len >> 8));
    out.push_back(static_cast<char>(nlen & 0xff));
    out.push_back(static_cast<char>(nlen >> 8));
    out.append(reinterpret_cast<const char*>(raw.data()) + offset, length);
    offset += length;
  } while (offset < raw.size());
  put_u32_be(out, adler32(raw.data(), raw.size()));
  return out;
}

}  // namespace

Image::Image(uint32_t width, uint32_t height, Rgb background)
    : width_(width), height_(height), pixels_(static_cast<size_t>(width) * height * 3)
{
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

void Image::set(int64_t x, int64_t y, Rgb colour)
{
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  const size_t i = (static_cast<size_t>(y) * width_ + static_cast<size_t>(x)) * 3;
  pixels_[i] = colour.r;
  pixels_[i + 1] = colour.g;
  pixels_[i + 2] = colour.b;
}

Rgb Image::at(uint32_t x, uint32_t y) const
{
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  return {pixels_[i], pixels_[i + 1], pixels_[i + 2]};
}

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc)
{
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = crc_table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t adler32(const uint8_t* data, size_t size)
{
  constexpr uint32_t mod = 65521;
  uint32_t a = 1, b = 0;
  for (size_t i = 0; i < size; ++i) {
    a = (a + data[i]) % mod;
    b = (b + a) % mod;
  }
  return (b << 16) | a;
}

std::string encode(const Image& image)
{
  std::string ihdr;
  put_u32_be(ihdr, image.width());
  put_u32_be(ihdr, image.height());
  ihdr += std::string{8, 2, 0, 0, 0};  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace

  // Each row: filter type 0, then the row's bytes as they are.
  const size_t row_bytes = static_cast<size_t>(image.width()) * 3;
  std::vector<uint8_t> raw;
  raw.reserve((row_bytes + 1) * image.height());
  for (uint32_t y = 0; y < image.height(); ++y) {
    raw.push_back(0);
    const uint8_t* row = image.pixels().data() + y * row_bytes;
    raw.insert(raw.end(), row, row + row_bytes);
  }

  std::string out("\x89PNG\r\n\x1a\n", 8);
  put_chunk(out, "IHDR", ihdr);
  put_chunk(out, "IDAT", zlib_stored(raw));
  put_chunk(out, "IEND", "");
  return out;
}

std::optional<std::string> write_file(const std::string& path, const Image& image)
{
  const std::string bytes = encode(image);
  auto failed = [&](int error) { return path + ": cannot write: " + std::strerror(error); };
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return failed(errno);
  const bool wrote = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  const int write_errno = errno;
  if (std::fclose(file) != 0) return failed(errno);
  if (!wrote) return failed(write_errno);
  return std::nullopt;
}

}  // namespace oversub::trace::png
