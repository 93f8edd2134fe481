// The device profiles (tracer/replay/device_profile.cpp) and their table in
// docs/replay.md say the same thing (Note [Device profiles]).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <set>
#include <string>

#include "tests/unit/tracer_test_support.h"
#include "tracer/replay/device_profile.h"

namespace oversub::replay {
namespace {

// The row docs/replay.md must hold for `p`, figures as the table prints them.
std::string doc_row(const DeviceProfile& p)
{
  return fmt::format("| `{}` | {:g} | {:g} | {:g} | {:g} | {:g} | {:g} | {:g} | {:g} | {:g} |", p.name,
                     p.matrix_fp32_flops / 1e12, p.matrix_half_flops / 1e12, p.vector_fp32_flops / 1e12,
                     p.memory_bytes_per_s / 1e9, static_cast<double>(p.memory_bytes) / (1u << 30),
                     p.link_bytes_per_s / 1e9, p.link_efficiency, p.two_way_efficiency, p.copy_latency_ns / 1e3);
}

TEST(ReplayProfiles, DocsHoldEveryProfileWithItsFigures)
{
  const std::string docs = trace::testing::read_file(trace::testing::source_path("docs/replay.md"));
  ASSERT_FALSE(docs.empty());
  for (const DeviceProfile& p : device_profiles()) {
    EXPECT_NE(docs.find(doc_row(p) + "\n"), std::string::npos) << "docs/replay.md lacks the row\n" << doc_row(p);
  }
}

TEST(ReplayProfiles, NamesAreUniqueAndFiguresSane)
{
  std::set<std::string_view> names;
  for (const DeviceProfile& p : device_profiles()) {
    SCOPED_TRACE(std::string(p.name));
    EXPECT_TRUE(names.insert(p.name).second);
    EXPECT_EQ(find_device_profile(p.name), &p);
    EXPECT_GE(p.matrix_fp32_flops, p.vector_fp32_flops);
    EXPECT_GE(p.matrix_half_flops, p.matrix_fp32_flops);
    EXPECT_GT(p.memory_bytes_per_s, p.link_bytes_per_s);
    EXPECT_GT(p.link_efficiency, 0);
    EXPECT_LE(p.link_efficiency, 1);
    EXPECT_GT(p.two_way_efficiency, 0);
    EXPECT_LE(p.two_way_efficiency, 1);
  }
  for (const char* wanted : {"h100-sxm", "h100-pcie", "gh200", "a100-40gb", "v100-32gb-nvlink", "titan-x-12gb"}) {
    EXPECT_NE(find_device_profile(wanted), nullptr) << wanted;
  }
  EXPECT_EQ(find_device_profile("h100"), nullptr);
}

}  // namespace
}  // namespace oversub::replay
