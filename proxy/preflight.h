// Pre-flight counts: a capped count sent on the client's own upstream
// connection, to measure what a destructive command would touch.
//
// A count is sent only while no client request is in flight there (so that
// its reply cannot be taken for the count's, nor the count's for its),
// under an id the client cannot predict; its reply is consumed by the
// session's relay and handed here, never to the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "policy/admission.h"
#include "proxy/net/async.h"
#include "proxy/net/stream.h"
#include "proxy/observe/metrics.h"
#include "proxy/reply_tracker.h"

namespace mongoguard::proxy {

// The count command for `m` (cap 0: uncapped) as an OP_MSG with id `id`.
std::vector<std::uint8_t> count_message(const policy::Measurement& m, std::int32_t id);
// The count's answer read from its reply.
policy::Measured read_count_reply(const std::vector<std::uint8_t>& reply,
                                  std::vector<std::uint8_t>& scratch, std::int32_t max_size);

// The answer to one of mongoguard's own commands: the reply's body document,
// or why there is none.
struct Asked {
  std::vector<std::uint8_t> body;  // BSON; empty when `error` says why
  std::string error;
};

class Preflight {
 public:
  // `idle` is the reply tracker's: notified when nothing is in flight.
  Preflight(Stream& upstream, ReplyTracker& replies, Event& idle, Metrics& metrics,
            std::chrono::milliseconds timeout, std::int32_t max_message_size);

  // One capped count; its error says why when it has no count.
  awaitable<policy::Measured> count(const policy::Measurement& m);
  // Any command of mongoguard's own (the journal's reads), sent and answered
  // under the same rules as a count.
  awaitable<Asked> ask(const std::vector<std::uint8_t>& command);
  // The reply to one of mongoguard's own requests. One that timed out is
  // answered late and dropped.
  void take_reply(const InFlight& entry, wire::Bytes frame);
  // The session closes: a count waiting gives up.
  void stop();

 private:
  std::int32_t unused_id();
  // Waits for no client request to be in flight; false (and `error`) when
  // that did not happen in time.
  awaitable<bool> wait_idle(std::chrono::steady_clock::time_point deadline, std::string& error);
  // Sends the message built by `build` under an unused id, and waits.
  template <typename Build>
  awaitable<std::optional<std::vector<std::uint8_t>>> send_and_wait(
      Build build, const char* what, std::chrono::steady_clock::time_point deadline,
      std::string& error);

  Stream& upstream_;
  ReplyTracker& replies_;
  Event& idle_;
  Metrics& metrics_;
  std::chrono::milliseconds timeout_;
  std::int32_t max_message_size_;
  Event answered_;
  std::mt19937 ids_{std::random_device{}()};
  // The count being waited for: its id and, once read, its reply.
  std::int32_t id_ = 0;
  std::optional<std::vector<std::uint8_t>> reply_;
  std::vector<std::uint8_t> scratch_;
  bool stopped_ = false;
};

}  // namespace mongoguard::proxy
