#include "proxy/admin/auth_failures.h"

#include <spdlog/spdlog.h>

#include "bson/text.h"

namespace mongoguard::proxy {

std::chrono::milliseconds AuthFailures::failed(const std::string& address, policy::TimePoint now) {
  if (metrics_) metrics_->admin_auth_failures.fetch_add(1, std::memory_order_relaxed);
  log(address, now);
  if (failures_.size() >= kMaxAddresses && !failures_.contains(address)) {
    std::erase_if(failures_, [&](const auto& entry) { return now - entry.second.first > kWindow; });
    // Still full: every address is slowed alike rather than one let through.
    if (failures_.size() >= kMaxAddresses) return kDelay;
  }
  Recent& recent = failures_[address];
  if (recent.count == 0 || now - recent.first > kWindow) recent = Recent{0, now};
  ++recent.count;
  return recent.count > kFreeFailures ? kDelay : std::chrono::milliseconds(0);
}

void AuthFailures::log(const std::string& address, policy::TimePoint now) {
  ++unlogged_;
  if (logged_at_ != policy::TimePoint{} && now - logged_at_ < std::chrono::seconds(10)) return;
  spdlog::warn(
      "admin: {} request(s) refused for a missing or wrong bearer token since the last such line "
      "(at most one every 10 s); latest from {}",
      unlogged_, wire::control_escaped(address));
  unlogged_ = 0;
  logged_at_ = now;
}

}  // namespace mongoguard::proxy
