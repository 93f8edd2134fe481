// A minimal PNG writer with no external library: 8-bit RGB, filter 0 on every
// row, the pixels in a zlib stream of *stored* (uncompressed) deflate blocks.
//
// Note [Stored-block PNG]
// ~~~~~~~~~~~~~~~~~~~~~~~
// A PNG is the 8-byte signature and chunks (length, type, data, CRC-32 of type
// and data): IHDR, IDAT, IEND. IDAT holds a zlib stream: a 2-byte header, deflate
// blocks, and the adler32 of the raw data. Deflate allows blocks that are not
// compressed (BTYPE 00): a header byte, LEN and its complement NLEN (16 bits,
// little-endian), then LEN raw bytes. A plot is mostly flat colour, so the file
// is larger than a compressed one (3 bytes a pixel), but every viewer reads it
// and the writer is a page of code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace oversub::trace::png {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

// An RGB image, rows top to bottom. Writes outside it are ignored.
class Image {
 public:
  Image(uint32_t width, uint32_t height, Rgb background = {255, 255, 255});
  uint32_t width() const { return width_; }
  uint32_t height() const { return height_; }
  void set(int64_t x, int64_t y, Rgb colour);
  Rgb at(uint32_t x, uint32_t y) const;
  const std::vector<uint8_t>& pixels() const { return pixels_; }  // width*height*3 bytes

 private:
  uint32_t width_;
  uint32_t height_;
  std::vector<uint8_t> pixels_;
};

// CRC-32 as PNG and zlib define it (polynomial 0xedb88320, reflected, ~ on entry
// and exit). Feed `crc` the result of a previous call to continue.
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);
uint32_t adler32(const uint8_t* data, size_t size);

inline constexpr size_t max_stored_block = 65535;

// The whole PNG file.
std::string encode(const Image& image);

// Writes encode(image) to `path`; on failure returns "PATH: cannot write: REASON".
std::optional<std::string> write_file(const std::string& path, const Image& image);

}  // namespace oversub::trace::png
