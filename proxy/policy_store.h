// The running configuration snapshot. Sessions read it once per inspected
// command; a reload swaps in a new snapshot atomically, so a command is
// judged entirely by one policy and no connection is disturbed.
#pragma once

#include <atomic>
#include <memory>

#include "config/config.h"

namespace mongoguard::proxy {

class PolicyStore {
 public:
  explicit PolicyStore(std::shared_ptr<const config::Config> initial)
      : current_(std::move(initial)) {}

  std::shared_ptr<const config::Config> current() const {
    return current_.load(std::memory_order_acquire);
  }
  void replace(std::shared_ptr<const config::Config> next) {
    current_.store(std::move(next), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const config::Config>> current_;
};

}  // namespace mongoguard::proxy
