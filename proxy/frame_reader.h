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

// The framing, shared by both sides. A frame is read in the caller's own
// loop, so the common read costs no coroutine frame of its own:
//
//   std::vector<std::uint8_t> built;
//   wire::Bytes frame;
//   ReadOutcome read;
//   for (std::size_t n = 0; !reader.assemble(built, frame, read, n);)
//     n = co_await reader.read_more(built);
//
// `Side` says whether a read must first wait for bytes someone else is
// reading (the client's hold watch), and whether its stream ended there.
template <class Side>
class FrameReader {
 public:
  // Builds the next frame from the bytes at hand, after taking the
  // `just_read` bytes of the last read_more() (0 before the first). True
  // when the frame is whole (`out.ok`) or cannot be (`out` says why:
  // `rejected` when the frame itself was bad, not the stream); false when
  // more bytes are needed.
  //
  // A frame that lies whole in the staging buffer (the usual case) is not
  // copied: `view` points at it there, valid until the next read_more().
  // Any other is built in `built` and `view` points at that.
  bool assemble(std::vector<std::uint8_t>& built, wire::Bytes& view, ReadOutcome& out,
                std::size_t just_read);
  // Reads more for the frame assemble() is building: whatever has arrived
  // (usually the whole next frame, or several) into the staging buffer, or
  // a large body's rest straight into the frame. Pass what it returns to
  // the next assemble().
  // `built` is assemble()'s.
  awaitable<std::size_t> read_more(std::vector<std::uint8_t>& built);

  static constexpr std::size_t kStagingBytes = 16 * 1024;

 protected:
  FrameReader(Stream& stream, std::int32_t max_message_size)
      : stream_(stream), max_message_size_(max_message_size) {}

  // Up to `size` bytes already read: staged ones first, then kept ones.
  std::size_t take_kept(std::uint8_t* out, std::size_t size);

  Stream& stream_;
  std::vector<std::uint8_t> kept_;  // what a watch read, behind the staged bytes

 private:
  // Where the last read_more() put its bytes.
  enum class Into : std::uint8_t { kNothing, kStaging, kFrame };
  // assemble() for a frame not taken in place: builds it in `frame`.
  bool build(std::vector<std::uint8_t>& frame, ReadOutcome& out);
  // No bytes at hand and none coming: fills `out` and returns true.
  bool stalled(ReadOutcome& out);
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
  std::size_t assembled_ = 0;  // bytes of the frame being built, in `frame`
  Into last_read_ = Into::kNothing;
  error_code stream_error_;  // the last read_more()'s
};

// Upstream replies: its stash, then the stream.
class UpstreamFrameReader : public FrameReader<UpstreamFrameReader> {
 public:
  UpstreamFrameReader(Stream& stream, std::int32_t max_message_size)
      : FrameReader(stream, max_message_size) {}

 private:
  friend class FrameReader<UpstreamFrameReader>;
  bool must_wait() const { return false; }
  awaitable<std::size_t> wait_for_watch() { co_return 0; }
  error_code ended() const { return {}; }
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
  // The bytes kept for the next frames reached kMaxReadahead: watch()
  // reads no more (the client then waits).
  bool read_ahead_full() const { return kept_.size() >= kMaxReadahead; }
  // Starts a read that keeps what arrives for the next frame, unless one is
  // outstanding already or the read-ahead is full. `then()` runs when it
  // completes, eof_seen() updated; it must keep this reader alive.
  template <class Then>
  void watch(Then then);
  // The session closes: a frame read waiting for the watch gives up.
  void stop() {
    stopped_ = true;
    watch_done_.notify();
  }

  static constexpr std::size_t kMaxReadahead = 1 << 20;

 private:
  friend class FrameReader<ClientFrameReader>;
  bool must_wait() const { return watch_pending_ && !stopped_; }
  // Waits for the watch's read to complete (its bytes are then kept).
  awaitable<std::size_t> wait_for_watch();
  // Why no more bytes will come, once the watch saw the stream end or the
  // session closed.
  error_code ended() const;
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
  if (watch_pending_ || read_ahead_full()) return;
  watch_buffer_.resize(16 * 1024);
  watch_pending_ = true;
  stream_.async_read_some(asio::buffer(watch_buffer_),
                          [this, then = std::move(then)](error_code ec, std::size_t n) mutable {
                            keep_watched(ec, n);
                            then();
                            // A frame read waiting for this read may go on.
                            watch_done_.notify();
                          });
}

}  // namespace mongoguard::proxy
