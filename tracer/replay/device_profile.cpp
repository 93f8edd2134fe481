// The device profiles: Note [Device profiles] in device_profile.h. docs/replay.md
// cites the source of every figure; replay_profile_test checks the two agree.
#include "tracer/replay/device_profile.h"

#include <array>

namespace oversub::replay {
namespace {

constexpr double tera = 1e12;
constexpr double giga = 1e9;
constexpr uint64_t gib = uint64_t{1} << 30;

// PCIe x16, per direction: Gen3 8 GT/s and Gen5 32 GT/s per lane, 128b/130b coding.
constexpr double pcie_gen3_x16 = 15.75 * giga;
constexpr double pcie_gen4_x16 = 32 * giga;
constexpr double pcie_gen5_x16 = 64 * giga;

constexpr std::array<DeviceProfile, 7> profiles = {{
    {"h100-sxm", "NVIDIA H100 SXM5 80GB, host link PCIe Gen5 x16", 494.7 * tera, 989.4 * tera, 66.9 * tera,
     3.35 * tera, 80 * gib, pcie_gen5_x16, 0.82, 0.8, 2000},
    {"h100-pcie", "NVIDIA H100 PCIe 80GB, host link PCIe Gen5 x16", 378 * tera, 756 * tera, 51.2 * tera, 2.0 * tera,
     80 * gib, pcie_gen5_x16, 0.82, 0.8, 2000},
    {"gh200", "NVIDIA GH200 Grace Hopper (96GB HBM3), host link NVLink-C2C", 494.7 * tera, 989.4 * tera,
     66.9 * tera, 4.0 * tera, 96 * gib, 450 * giga, 0.85, 0.9, 1000},
    {"a100-40gb", "NVIDIA A100 SXM4 40GB, host link PCIe Gen4 x16", 156 * tera, 312 * tera, 19.5 * tera,
     1.555 * tera, 40 * gib, pcie_gen4_x16, 0.8, 0.8, 2000},
    {"v100-32gb-nvlink", "NVIDIA V100 SXM2 32GB in an IBM AC922, host link NVLink 2.0 to POWER9 (3 bricks)",
     15.7 * tera, 125 * tera, 15.7 * tera, 900 * giga, 32 * gib, 75 * giga, 0.85, 0.9, 1000},
    {"v100-16gb-nvlink", "NVIDIA V100 SXM2 16GB in an IBM AC922, host link NVLink 2.0 to POWER9 (3 bricks)",
     15.7 * tera, 125 * tera, 15.7 * tera, 900 * giga, 16 * gib, 75 * giga, 0.85, 0.9, 1000},
    {"titan-x-12gb", "NVIDIA GeForce GTX TITAN X (Maxwell) 12GB, host link PCIe Gen3 x16", 6.6 * tera, 6.6 * tera,
     6.6 * tera, 336.5 * giga, 12 * gib, pcie_gen3_x16, 0.76, 0.8, 2000},
}};

}  // namespace

std::span<const DeviceProfile> device_profiles() { return profiles; }

const DeviceProfile* find_device_profile(std::string_view name)
{
  for (const DeviceProfile& profile : profiles) {
    if (profile.name == name) return &profile;
  }
  return nullptr;
}

}  // namespace oversub::replay
