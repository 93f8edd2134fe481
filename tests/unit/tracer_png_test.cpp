// The PNG writer: what it writes decodes (by an independent reader) to the same pixels.
#include "tracer/png.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/png_test_support.h"
#include "tests/unit/tracer_test_support.h"

namespace oversub::trace {
namespace {

using testing::decode_png;

// A pattern that makes every row and column different.
png::Image pattern(uint32_t width, uint32_t height)
{
  png::Image image(width, height);
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      image.set(x, y, {uint8_t(x * 7 + y), uint8_t(y * 13 + x / 3), uint8_t((x ^ y) * 5)});
    }
  }
  return image;
}

std::vector<uint8_t> expected_raw(const png::Image& image)
{
  std::vector<uint8_t> raw;
  for (uint32_t y = 0; y < image.height(); ++y) {
    raw.push_back(0);  // filter type 0
    for (uint32_t x = 0; x < image.width(); ++x) {
      const png::Rgb c = image.at(x, y);
      raw.insert(raw.end(), {c.r, c.g, c.b});
    }
  }
  return raw;
}

TEST(TracerPng, Checksums)
{
  const std::string check = "123456789";
  EXPECT_EQ(png::crc32(reinterpret_cast<const uint8_t*>(check.data()), check.size()), 0xcbf43926u);
  EXPECT_EQ(png::crc32(reinterpret_cast<const uint8_t*>("IEND"), 4), 0xae426082u);
  const std::string wiki = "Wikipedia";
  EXPECT_EQ(png::adler32(reinterpret_cast<const uint8_t*>(wiki.data()), wiki.size()), 0x11e60398u);
  // Continuing a CRC equals computing it in one go.
  const uint32_t first = png::crc32(reinterpret_cast<const uint8_t*>(check.data()), 4);
  EXPECT_EQ(png::crc32(reinterpret_cast<const uint8_t*>(check.data()) + 4, 5, first), 0xcbf43926u);
}

TEST(TracerPng, SmallImageRoundTrips)
{
  const png::Image image = pattern(7, 5);
  const std::string file = png::encode(image);
  const testing::DecodedPng decoded = decode_png(file);
  ASSERT_EQ(decoded.error, "");
  EXPECT_EQ(decoded.chunk_types, (std::vector<std::string>{"IHDR", "IDAT", "IEND"}));
  EXPECT_EQ(decoded.width, 7u);
  EXPECT_EQ(decoded.height, 5u);
  EXPECT_EQ(decoded.bit_depth, 8);
  EXPECT_EQ(decoded.colour_type, 2);  // RGB
  EXPECT_EQ(decoded.compression, 0);
  EXPECT_EQ(decoded.filter, 0);
  EXPECT_EQ(decoded.interlace, 0);
  EXPECT_EQ(decoded.stored_blocks, 1u);
  EXPECT_EQ(decoded.raw, expected_raw(image));
  // The last 12 bytes are exactly the IEND chunk.
  EXPECT_EQ(file.substr(file.size() - 12), std::string("\0\0\0\0IEND\xae\x42\x60\x82", 12));
}

TEST(TracerPng, LargeImageUsesSeveralStoredBlocks)
{
  const png::Image image = pattern(300, 200);  // 200 * 901 = 180200 raw bytes
  const testing::DecodedPng decoded = decode_png(png::encode(image));
  ASSERT_EQ(decoded.error, "");
  EXPECT_EQ(decoded.raw.size(), 180200u);
  EXPECT_EQ(decoded.stored_blocks, 3u);  // 65535 + 65535 + 49130
  EXPECT_EQ(decoded.raw, expected_raw(image));
  EXPECT_EQ(decoded.pixel(299, 199), (std::array<uint8_t, 3>{image.at(299, 199).r, image.at(299, 199).g,
                                                             image.at(299, 199).b}));
}

TEST(TracerPng, RawDataOnABlockBoundary)
{
  // Rows of 1 + 28 * 3 = 85 bytes; 771 rows are exactly one full block (65535 bytes),
  // 1542 rows exactly two: no empty block may follow the last full one.
  for (const auto& [height, blocks] : {std::pair{771u, 1u}, std::pair{1542u, 2u}}) {
    const png::Image image = pattern(28, height);
    const testing::DecodedPng decoded = decode_png(png::encode(image));
    ASSERT_EQ(decoded.error, "") << height;
    EXPECT_EQ(decoded.raw.size(), 85u * height);
    EXPECT_EQ(decoded.stored_blocks, blocks) << height;
    EXPECT_EQ(decoded.raw, expected_raw(image)) << height;
  }
}

TEST(TracerPng, CorruptionIsDetectedByTheTestReader)
{
  // The reader used above would notice a broken file: flip one pixel byte.
  std::string file = png::encode(pattern(4, 4));
  file[8 + 25 + 8 + 2 + 5 + 3] ^= 1;
  EXPECT_NE(decode_png(file).error, "");
}

TEST(TracerPng, WriteFile)
{
  testing::TempPath path(".png");
  const png::Image image = pattern(3, 2);
  EXPECT_EQ(png::write_file(path.str(), image), std::nullopt);
  EXPECT_EQ(testing::read_file(path.str()), png::encode(image));
  const std::optional<std::string> error = png::write_file("/nonexistent-oversub/x.png", image);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(*error, "/nonexistent-oversub/x.png: cannot write: No such file or directory");
}

}  // namespace
}  // namespace oversub::trace
