// One client connection and its own upstream connection.
//
// Two coroutines run per session on the session's worker thread: one reads
// client frames, validates them and forwards the original bytes upstream;
// the other relays upstream frames back. Either side ending closes both.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bson/wire.h"
#include "proxy/asio.h"
#include "proxy/endpoint.h"
#include "proxy/metrics.h"

namespace mongoguard::proxy {

// Shared by every session; immutable while the server runs.
struct SessionSettings {
  HostPort upstream;
  std::int32_t max_message_size = wire::kMaxMessageSize;
  std::chrono::milliseconds connect_timeout{10'000};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket client, std::uint64_t id, const SessionSettings& settings,
          Metrics& metrics);
  ~Session();

  void start();

 private:
  asio::awaitable<void> run();
  asio::awaitable<bool> connect_upstream();
  asio::awaitable<void> relay_client_to_upstream();
  asio::awaitable<void> relay_upstream_to_client();

  // Reads one whole frame into `frame`. On failure returns false with the
  // reason; `rejected` is set when the frame itself was bad (not the socket).
  struct ReadOutcome {
    bool ok = false;
    bool clean_eof = false;
    wire::DecodeError rejected = wire::DecodeError::kNone;
    std::string reason;
  };
  asio::awaitable<ReadOutcome> read_frame(tcp::socket& socket, std::vector<std::uint8_t>& frame);

  void reject_frame(wire::DecodeError reason);
  void close(std::string_view reason);

  tcp::socket client_;
  tcp::socket upstream_;
  std::uint64_t id_;
  std::string peer_;
  const SessionSettings& settings_;
  Metrics& metrics_;
  bool closed_ = false;
  std::uint64_t messages_in_ = 0;
  std::uint64_t messages_out_ = 0;
};

}  // namespace mongoguard::proxy
