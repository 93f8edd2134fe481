// A PNG reader for the tests, written apart from tracer/png.cpp: it checks the
// signature, every chunk's CRC (bit by bit, not with the writer's table), the
// IHDR fields, the zlib header and adler32, and inflates stored deflate blocks
// (the only kind the writer makes; any other block type is an error).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace oversub::trace::testing {

struct DecodedPng {
  std::string error;  // empty when the file is valid
  uint32_t width = 0, height = 0;
  uint8_t bit_depth = 0, colour_type = 0, compression = 0, filter = 0, interlace = 0;
  std::vector<std::string> chunk_types;
  size_t stored_blocks = 0;
  std::vector<uint8_t> raw;  // inflated: each row a filter byte, then width * 3 bytes

  // The pixel at (x, y), for an RGB image with filter 0 rows.
  std::array<uint8_t, 3> pixel(uint32_t x, uint32_t y) const
  {
    const size_t i = y * (static_cast<size_t>(width) * 3 + 1) + 1 + static_cast<size_t>(x) * 3;
    return {raw[i], raw[i + 1], raw[i + 2]};
  }
};

inline uint32_t bitwise_crc32(const std::string& bytes)
{
  uint32_t crc = 0xffffffffu;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

inline DecodedPng decode_png(const std::string& file)
{
  DecodedPng png;
  auto u32 = [&](size_t at) {
    return (uint32_t(uint8_t(file[at])) << 24) | (uint32_t(uint8_t(file[at + 1])) << 16) |
           (uint32_t(uint8_t(file[at + 2])) << 8) | uint32_t(uint8_t(file[at + 3]));
  };
  if (file.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) != 0) return png.error = "bad signature", png;
  std::string idat;
  size_t at = 8;
  while (at < file.size()) {
    if (at + 12 > file.size()) return png.error = "truncated chunk header", png;
    const uint32_t length = u32(at);
    if (at + 12 + length > file.size()) return png.error = "truncated chunk", png;
    const std::string type = file.substr(at + 4, 4);
    const std::string data = file.substr(at + 8, length);
    if (bitwise_crc32(type + data) != u32(at + 8 + length)) return png.error = "bad CRC in " + type, png;
    png.chunk_types.push_back(type);
    if (type == "IHDR") {
      if (length != 13) return png.error = "IHDR length", png;
      png.width = u32(at + 8);
      png.height = u32(at + 12);
      png.bit_depth = uint8_t(data[8]);
      png.colour_type = uint8_t(data[9]);
      png.compression = uint8_t(data[10]);
      png.filter = uint8_t(data[11]);
      png.interlace = uint8_t(data[12]);
    } else if (type == "IDAT") {
      idat += data;
    }
    at += 12 + length;
  }
  if (png.chunk_types.empty() || png.chunk_types.front() != "IHDR" || png.chunk_types.back() != "IEND") {
    return png.error = "chunks must start with IHDR and end with IEND", png;
  }
  // zlib: CMF FLG, blocks, adler32.
  if (idat.size() < 6) return png.error = "IDAT too short", png;
  const unsigned cmf = uint8_t(idat[0]), flg = uint8_t(idat[1]);
  if ((cmf & 0x0f) != 8 || (cmf * 256 + flg) % 31 != 0 || (flg & 0x20)) return png.error = "bad zlib header", png;
  size_t p = 2;
  for (bool final = false; !final;) {
    if (p + 5 > idat.size()) return png.error = "truncated deflate block", png;
    const unsigned header = uint8_t(idat[p]);
    final = header & 1;
    if (((header >> 1) & 3) != 0) return png.error = "not a stored block", png;
    const unsigned len = uint8_t(idat[p + 1]) | (unsigned(uint8_t(idat[p + 2])) << 8);
    const unsigned nlen = uint8_t(idat[p + 3]) | (unsigned(uint8_t(idat[p + 4])) << 8);
    if ((len ^ 0xffffu) != nlen) return png.error = "LEN/NLEN mismatch", png;
    if (p + 5 + len > idat.size()) return png.error = "stored block past the end", png;
    png.raw.insert(png.raw.end(), idat.begin() + long(p + 5), idat.begin() + long(p + 5 + len));
    p += 5 + len;
    png.stored_blocks++;
  }
  if (p + 4 != idat.size()) return png.error = "bytes after the deflate stream", png;
  uint32_t a = 1, b = 0;
  for (uint8_t byte : png.raw) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  const uint32_t adler = (uint32_t(uint8_t(idat[p])) << 24) | (uint32_t(uint8_t(idat[p + 1])) << 16) |
                         (uint32_t(uint8_t(idat[p + 2])) << 8) | uint32_t(uint8_t(idat[p + 3]));
  if (adler != ((b << 16) | a)) return png.error = "bad adler32", png;
  if (png.raw.size() != png.height * (size_t(png.width) * 3 + 1)) return png.error = "wrong raw size", png;
  return png;
}

}  // namespace oversub::trace::testing
