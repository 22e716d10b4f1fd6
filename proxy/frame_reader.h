// Reads whole wire frames from one side of a session.
//
// Both sides read through a staging buffer (one system call per frame, or
// per several) and keep what arrived beyond the frame for the next one. The
// client side also keeps what a hold's watch read while the request was
// parked (see ClientFrameReader::watch); the upstream side only its stash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bson/wire.h"
#include "proxy/net/async.h"
#include "proxy/net/stream.h"

namespace mongoguard::proxy {

// One frame read, or why not. `rejected` is set when the frame itself was
// bad (not the socket).
struct ReadOutcome {
  bool ok = false;
  bool clean_eof = false;
  wire::DecodeError rejected = wire::DecodeError::kNone;
  std::string reason;
};

// The framing, shared by both sides. `Side` says whether a read must first
// wait for bytes someone else is reading (the client's hold watch): checked
// inline, so the common read costs no extra coroutine.
template <class Side>
class FrameReader {
 public:
  // Reads one whole frame into `frame`, checking its header against the
  // size limit.
  asio::awaitable<ReadOutcome> read_frame(std::vector<std::uint8_t>& frame);

  // Buffered reads: large bodies go straight into the frame.
  static constexpr std::size_t kStagingBytes = 16 * 1024;

 protected:
  FrameReader(Stream& stream, std::int32_t max_message_size)
      : stream_(stream), max_message_size_(max_message_size) {}

  // Up to `size` kept bytes, without suspending: a frame that arrived whole
  // with its header costs no second coroutine.
  std::size_t take_kept(std::uint8_t* out, std::size_t size);
  // Reads exactly `size` bytes: kept bytes first, then the stream, keeping
  // whatever came beyond them.
  asio::awaitable<std::size_t> read_exact(std::uint8_t* out, std::size_t size, error_code& ec);

  Stream& stream_;
  std::vector<std::uint8_t> kept_;  // what a watch read, behind the staged bytes

 private:
  ReadOutcome header_failed(const error_code& ec, std::size_t got) const;
  ReadOutcome header_rejected(const wire::Header& header, wire::DecodeError error) const;

  std::int32_t max_message_size_;
  // Not zero-filled: the kernel writes what it reads, so an idle
  // connection's staging pages beyond its largest read are never touched
  // and never become resident.
  std::unique_ptr<std::uint8_t[]> staging_{new std::uint8_t[kStagingBytes]};
  // staging_[staged_begin_, staged_end_): read beyond the last frame, ahead
  // of kept_.
  std::size_t staged_begin_ = 0;
  std::size_t staged_end_ = 0;
};

// Upstream replies: its stash, then the stream.
class UpstreamFrameReader : public FrameReader<UpstreamFrameReader> {
 public:
  UpstreamFrameReader(Stream& stream, std::int32_t max_message_size)
      : FrameReader(stream, max_message_size) {}

 private:
  friend class FrameReader<UpstreamFrameReader>;
  bool must_wait() const { return false; }
  asio::awaitable<std::size_t> wait_for_watch(std::uint8_t*, std::size_t have, std::size_t,
                                              error_code&) {
    co_return have;
  }
};

// Client requests. While a request is held the client is still read (see
// watch()); at most one read is ever outstanding on the stream, so a frame
// read waits for the watch's read rather than starting another.
class ClientFrameReader : public FrameReader<ClientFrameReader> {
 public:
  ClientFrameReader(Stream& stream, std::int32_t max_message_size)
      : FrameReader(stream, max_message_size), watch_done_(stream.get_executor()) {}

  // The client's stream ended (or failed) behind the bytes kept.
  bool eof_seen() const { return eof_seen_; }
  // Starts a read that keeps what arrives for read_frame, unless one is
  // outstanding already or the read-ahead is full (the connection then
  // simply waits). `then()` runs when it completes, eof_seen() updated;
  // it must keep this reader alive.
  template <class Then>
  void watch(Then then);
  // The session closes: a read_exact waiting for the watch gives up.
  void stop() {
    stopped_ = true;
    watch_done_.notify();
  }

  static constexpr std::size_t kMaxReadahead = 1 << 20;

 private:
  friend class FrameReader<ClientFrameReader>;
  bool must_wait() const { return watch_pending_ || eof_seen_; }
  // Takes what the watch read (waiting for its read while it is
  // outstanding) up to `size`; sets `ec` when the stream ended behind it.
  asio::awaitable<std::size_t> wait_for_watch(std::uint8_t* out, std::size_t have, std::size_t size,
                                              error_code& ec);
  void keep_watched(const error_code& ec, std::size_t n);

  bool eof_seen_ = false;
  error_code read_error_;  // what ended the client stream, once seen
  bool watch_pending_ = false;
  bool stopped_ = false;
  std::vector<std::uint8_t> watch_buffer_;
  Event watch_done_;
};

template <class Then>
void ClientFrameReader::watch(Then then) {
  if (watch_pending_ || kept_.size() >= kMaxReadahead) return;
  watch_buffer_.resize(16 * 1024);
  watch_pending_ = true;
  stream_.async_read_some(asio::buffer(watch_buffer_),
                          [this, then = std::move(then)](error_code ec, std::size_t n) mutable {
                            keep_watched(ec, n);
                            then();
                            // A read_exact waiting for this read may go on.
                            watch_done_.notify();
                          });
}

}  // namespace mongoguard::proxy
