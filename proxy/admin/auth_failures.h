// Failed admin authentications: counted, logged (at most one line every
// 10 s, with how many and the latest address), and slowed per address. After
// kFreeFailures failures from one address within kWindow, each further
// refusal to it waits kDelay before it is answered, so a token cannot be
// guessed at wire speed; a good token from that address clears its count.
// Touched on the admin thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "policy/budget.h"
#include "proxy/observe/metrics.h"

namespace mongoguard::proxy {

class AuthFailures {
 public:
  static constexpr int kFreeFailures = 5;
  static constexpr std::chrono::seconds kWindow{60};
  static constexpr std::chrono::milliseconds kDelay{2000};
  static constexpr std::size_t kMaxAddresses = 4096;

  explicit AuthFailures(Metrics* metrics = nullptr) : metrics_(metrics) {}

  // A refused token from `address` (host, no port): how long to wait
  // before answering.
  std::chrono::milliseconds failed(const std::string& address, policy::TimePoint now);
  // A good token from `address`.
  void succeeded(const std::string& address) { failures_.erase(address); }

 private:
  struct Recent {
    int count = 0;
    policy::TimePoint first{};
  };
  void log(const std::string& address, policy::TimePoint now);

  Metrics* metrics_;
  std::unordered_map<std::string, Recent> failures_;
  std::uint64_t unlogged_ = 0;
  policy::TimePoint logged_at_{};
};

}  // namespace mongoguard::proxy
