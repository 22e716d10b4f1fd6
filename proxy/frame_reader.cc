#include "proxy/frame_reader.h"

#include <algorithm>

namespace mongoguard::proxy {

template <class Side>
std::size_t FrameReader<Side>::take_kept(std::uint8_t* out, std::size_t size) {
  // What the last staging read brought beyond its frame comes first (it was
  // read first), then what a watch read kept.
  std::size_t take = std::min(size, staged_end_ - staged_begin_);
  if (take > 0) {
    std::copy_n(staging_.get() + staged_begin_, take, out);
    staged_begin_ += take;
  }
  const std::size_t more = std::min(size - take, kept_.size());
  if (more == 0) return take;
  std::copy_n(kept_.begin(), more, out + take);
  kept_.erase(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(more));
  return take + more;
}

template <class Side>
asio::awaitable<std::size_t> FrameReader<Side>::read_exact(std::uint8_t* out, std::size_t size,
                                                           error_code& ec) {
  std::size_t have = take_kept(out, size);
  if (have == size) co_return have;
  auto& side = static_cast<Side&>(*this);
  if (side.must_wait()) {
    have = co_await side.wait_for_watch(out, have, size, ec);
    if (have == size || ec) co_return have;
  }
  const std::size_t need = size - have;
  if (need >= kStagingBytes) {
    // Large bodies go straight into the frame.
    const std::size_t n = co_await stream_.read(asio::buffer(out + have, need), ec);
    co_return have + n;
  }
  // Small reads: take whatever has arrived (usually the whole next frame, or
  // several) in one system call and keep the rest for the next read.
  const std::size_t n =
      co_await stream_.read_at_least(asio::buffer(staging_.get(), kStagingBytes), need, ec);
  // Nothing was kept (take_kept above found too little), so the staged
  // window restarts: what is not taken now is served from it, uncopied.
  const std::size_t take = std::min(n, need);
  std::copy_n(staging_.get(), take, out + have);
  staged_begin_ = take;
  staged_end_ = n;
  co_return have + take;
}

template <class Side>
ReadOutcome FrameReader<Side>::header_failed(const error_code& ec, std::size_t got) const {
  ReadOutcome out;
  if (ec == asio::error::eof && got == 0) {
    out.clean_eof = true;
    out.reason = "closed by peer";
  } else if (ec == asio::error::eof) {
    out.rejected = wire::DecodeError::kTruncated;
    out.reason = "connection ended inside a frame header";
  } else {
    out.reason = ec.message();
  }
  return out;
}

template <class Side>
ReadOutcome FrameReader<Side>::header_rejected(const wire::Header& header,
                                               wire::DecodeError error) const {
  ReadOutcome out;
  out.rejected = error;
  out.reason = error == wire::DecodeError::kTooLarge
                   ? "messageLength " + std::to_string(header.message_length) +
                         " exceeds limits.max_message_size " + std::to_string(max_message_size_)
                   : wire::error_name(error);
  return out;
}

template <class Side>
asio::awaitable<ReadOutcome> FrameReader<Side>::read_frame(std::vector<std::uint8_t>& frame) {
  error_code ec;
  // Never shrunk before the header is read: a frame the size of the last
  // one (the usual case) then costs no zero-filling of its body.
  if (frame.size() < wire::kHeaderSize) frame.resize(wire::kHeaderSize);
  std::size_t n = take_kept(frame.data(), wire::kHeaderSize);
  if (n < wire::kHeaderSize && !static_cast<Side&>(*this).must_wait()) {
    // The usual wait for the next frame, read here rather than through
    // read_exact(): one coroutine frame fewer to allocate per frame. Nothing
    // is kept (take_kept found too little), so the staged window restarts.
    const std::size_t got = co_await stream_.read_at_least(
        asio::buffer(staging_.get(), kStagingBytes), wire::kHeaderSize - n, ec);
    staged_begin_ = 0;
    staged_end_ = got;
    n += take_kept(frame.data() + n, wire::kHeaderSize - n);
  } else if (n < wire::kHeaderSize) {
    n += co_await read_exact(frame.data() + n, wire::kHeaderSize - n, ec);
  }
  if (ec) co_return header_failed(ec, n);
  auto header = wire::read_header(frame);
  if (auto error = wire::check_header(header, max_message_size_);
      error != wire::DecodeError::kNone) {
    co_return header_rejected(header, error);
  }
  frame.resize(static_cast<std::size_t>(header.message_length));
  const std::size_t body = frame.size() - wire::kHeaderSize;
  const std::size_t buffered = take_kept(frame.data() + wire::kHeaderSize, body);
  if (buffered < body) {
    co_await read_exact(frame.data() + wire::kHeaderSize + buffered, body - buffered, ec);
  }
  ReadOutcome out;
  if (ec == asio::error::eof) {
    out.rejected = wire::DecodeError::kTruncated;
    out.reason = "connection ended inside a frame";
  } else if (ec) {
    out.reason = ec.message();
  } else {
    out.ok = true;
  }
  co_return out;
}

asio::awaitable<std::size_t> ClientFrameReader::wait_for_watch(std::uint8_t* out, std::size_t have,
                                                               std::size_t size, error_code& ec) {
  for (;;) {
    have += take_kept(out + have, size - have);
    if (have == size) co_return have;
    if (eof_seen_) {
      ec = read_error_ ? read_error_ : asio::error::eof;
      co_return have;
    }
    if (!watch_pending_ || stopped_) co_return have;
    co_await watch_done_.wait();
  }
}

void ClientFrameReader::keep_watched(const error_code& ec, std::size_t n) {
  watch_pending_ = false;
  kept_.insert(kept_.end(), watch_buffer_.begin(),
               watch_buffer_.begin() + static_cast<std::ptrdiff_t>(n));
  if (ec) {
    eof_seen_ = true;
    read_error_ = ec;
  }
}

template class FrameReader<ClientFrameReader>;
template class FrameReader<UpstreamFrameReader>;

}  // namespace mongoguard::proxy
