// Durations as people read them: the policy file's "90s" / "1h" / "250ms",
// and the elapsed times of holds and drains ("1m30s"). One formatter, so
// the config, the logs, the API, the metrics and ctl all say it alike.
#pragma once

#include <chrono>
#include <string>

namespace mongoguard::policy {

enum class DurationStyle {
  // Exact, in the largest unit that divides it, as the policy file writes
  // windows and timeouts: "2d", "36h", "1m", "90s", "250ms", "0ms".
  kConfig,
  // Rounded to the nearest second and shown in at most two units, for how
  // long something has waited or will wait: "45s", "1m30s", "2h5m".
  kElapsed,
};

std::string format_duration(std::chrono::milliseconds d,
                            DurationStyle style = DurationStyle::kConfig);

}  // namespace mongoguard::policy
