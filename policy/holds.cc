#include "policy/holds.h"

namespace mongoguard::policy {

const char* hold_outcome_name(HoldOutcome o) {
  switch (o) {
    case HoldOutcome::kApproved:
      return "approved";
    case HoldOutcome::kRejected:
      return "rejected";
    case HoldOutcome::kTimedOut:
      return "timed out";
    case HoldOutcome::kMaxTimeExpired:
      return "maxTimeMS expired";
    case HoldOutcome::kClientGone:
      return "client gone";
    case HoldOutcome::kShutdown:
      return "shutdown";
    case HoldOutcome::kReadAheadFull:
      return "read-ahead full";
  }
  return "unknown";
}

std::uint64_t HoldRegistry::add(HoldInfo info, Resolved on_resolved, std::size_t max_pending) {
  std::lock_guard lock(mutex_);
  if (holds_.size() >= max_pending) return 0;
  info.id = next_id_++;
  const auto id = info.id;
  holds_.emplace(id, Entry{std::move(info), std::move(on_resolved)});
  return id;
}

bool HoldRegistry::resolve(std::uint64_t id, const HoldDecision& decision) {
  Resolved callback;
  {
    std::lock_guard lock(mutex_);
    auto it = holds_.find(id);
    if (it == holds_.end()) return false;
    callback = std::move(it->second.on_resolved);
    holds_.erase(it);
  }
  if (callback) callback(decision);
  return true;
}

HoldRegistry::Approval HoldRegistry::approve(std::uint64_t id, const HoldDecision& decision,
                                             std::chrono::system_clock::time_point at,
                                             HoldInfo* after) {
  Resolved callback;
  HoldDecision released = decision;
  {
    std::lock_guard lock(mutex_);
    auto it = holds_.find(id);
    if (it == holds_.end()) return Approval::kUnknown;
    auto& info = it->second.info;
    for (const auto& a : info.approvals) {
      if (a.by == decision.by) {
        if (after) *after = info;
        return Approval::kAlready;
      }
    }
    info.approvals.push_back({decision.by, decision.reason, at});
    if (after) *after = info;
    if (static_cast<int>(info.approvals.size()) < info.approvals_needed) return Approval::kRecorded;
    released.approvals = info.approvals;
    callback = std::move(it->second.on_resolved);
    holds_.erase(it);
  }
  if (callback) callback(released);
  return Approval::kReleased;
}

std::size_t HoldRegistry::resolve_breaker(const std::string& breaker,
                                          const HoldDecision& decision) {
  std::vector<Resolved> callbacks;
  {
    std::lock_guard lock(mutex_);
    for (auto it = holds_.begin(); it != holds_.end();) {
      if (it->second.info.breaker == breaker) {
        callbacks.push_back(std::move(it->second.on_resolved));
        it = holds_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& cb : callbacks) {
    if (cb) cb(decision);
  }
  return callbacks.size();
}

std::size_t HoldRegistry::resolve_all(const HoldDecision& decision) {
  std::map<std::uint64_t, Entry> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(holds_);
  }
  for (auto& [id, entry] : all) {
    if (entry.on_resolved) entry.on_resolved(decision);
  }
  return all.size();
}

std::vector<HoldInfo> HoldRegistry::pending() const {
  std::lock_guard lock(mutex_);
  std::vector<HoldInfo> out;
  out.reserve(holds_.size());
  for (const auto& [id, entry] : holds_) out.push_back(entry.info);
  return out;
}

std::optional<HoldInfo> HoldRegistry::find(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  auto it = holds_.find(id);
  if (it == holds_.end()) return std::nullopt;
  return it->second.info;
}

std::size_t HoldRegistry::size() const {
  std::lock_guard lock(mutex_);
  return holds_.size();
}

void HoldRegistry::set_first_id(std::uint64_t first) {
  std::lock_guard lock(mutex_);
  if (first > next_id_) next_id_ = first;
}

}  // namespace mongoguard::policy
