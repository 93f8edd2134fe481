// A tiny built-in 5x7 bitmap font for the plot's text: digits, A-Z (lowercase
// is drawn as uppercase) and a few symbols (space . , : / % ( ) - _ + = ?).
// Any other character is drawn as '?'.
#pragma once

#include <cstdint>
#include <string_view>

#include "tracer/png.h"

namespace oversub::trace::font {

inline constexpr int glyph_width = 5;
inline constexpr int glyph_height = 7;
inline constexpr int advance = glyph_width + 1;  // one blank column between glyphs

// Seven rows, top first; bit 4 is the leftmost pixel.
struct Glyph {
  char c;
  uint8_t rows[glyph_height];
};
const Glyph& glyph(char c);

// Pixel width of `text` drawn at `scale` (each font pixel a scale x scale square).
int text_width(std::string_view text, int scale = 1);

// Draws `text` with its top-left corner at (x, y).
void draw_text(png::Image& image, int64_t x, int64_t y, std::string_view text, png::Rgb colour, int scale = 1);

}  // namespace oversub::trace::font
