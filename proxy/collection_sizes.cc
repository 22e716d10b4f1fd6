#include "proxy/collection_sizes.h"

#include <algorithm>

namespace mongoguard::proxy {

std::optional<std::int64_t> CollectionSizes::get(const std::string& ns,
                                                 Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  auto it = sizes_.find(ns);
  if (it == sizes_.end() || now >= it->second.at + kFresh || now < it->second.at) {
    return std::nullopt;
  }
  return it->second.count;
}

void CollectionSizes::put(const std::string& ns, std::int64_t count, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (sizes_.size() >= kMaxEntries && !sizes_.contains(ns)) {
    std::erase_if(sizes_, [&](const auto& item) { return now >= item.second.at + kFresh; });
    if (sizes_.size() >= kMaxEntries) sizes_.clear();
  }
  sizes_[ns] = {std::max<std::int64_t>(count, 0), now};
}

std::size_t CollectionSizes::size() const {
  std::lock_guard lock(mutex_);
  return sizes_.size();
}

}  // namespace mongoguard::proxy
