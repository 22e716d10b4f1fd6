// Writes to the client, in turn. Both of a session's coroutines may answer
// the client (the relay of upstream replies, and mongoguard's own refusals),
// on the session's one thread; each write goes out whole, in the order the
// writers arrived, and only a few may wait at once.
#pragma once

#include <cstdint>

#include "proxy/net/async.h"
#include "proxy/net/stream.h"

namespace mongoguard::proxy {

class ClientWriter {
 public:
  explicit ClientWriter(Stream& client) : client_(client), turn_(client.get_executor()) {}

  // Writes `bytes` whole after the writes queued before it. False when it
  // failed (`ec` says why), when kMaxQueued writes wait already (`ec` is
  // no_buffer_space), or when the writer was stopped (`ec` clear).
  awaitable<bool> write(asio::const_buffer bytes, error_code& ec);
  // The common case without a coroutine: when no write is in progress or
  // waiting, sends `bytes` at once. Returns how many bytes went out (all of
  // them, usually); the caller passes the rest, if any, to write() straight
  // away, before anything else can run. Sets `ec` on failure and when
  // stopped (operation_aborted).
  std::size_t write_at_once(asio::const_buffer bytes, error_code& ec);
  // The session closes: waiting writers give up.
  void stop() {
    stopped_ = true;
    turn_.notify();
  }
  // Writes in progress or waiting.
  std::size_t queued() const { return static_cast<std::size_t>(next_ - serving_); }

  // A session has two writers; more waiting means something is wrong.
  static constexpr std::size_t kMaxQueued = 4;

 private:
  Stream& client_;
  Event turn_;                 // a write finished: the next in line may go
  std::uint64_t next_ = 0;     // the ticket the next writer takes
  std::uint64_t serving_ = 0;  // the ticket whose write goes now
  bool stopped_ = false;
};

}  // namespace mongoguard::proxy
