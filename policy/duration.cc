#include "policy/duration.h"

#include <array>
#include <cstdint>

namespace mongoguard::policy {
namespace {

std::string exact(std::int64_t ms) {
  struct Unit {
    std::int64_t ms;
    const char* suffix;
  };
  constexpr std::array<Unit, 4> kUnits = {
      {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}}};
  if (ms != 0) {
    for (const Unit& u : kUnits) {
      if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.suffix;
    }
  }
  return std::to_string(ms) + "ms";
}

std::string elapsed(std::int64_t ms) {
  const std::int64_t s = (ms + 500) / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
}

}  // namespace

std::string format_duration(std::chrono::milliseconds d, DurationStyle style) {
  return style == DurationStyle::kElapsed ? elapsed(d.count()) : exact(d.count());
}

}  // namespace mongoguard::policy
