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
bool FrameReader<Side>::assemble(std::vector<std::uint8_t>& built, wire::Bytes& view,
                                 ReadOutcome& out, std::size_t just_read) {
  if (last_read_ == Into::kStaging) {
    // take_kept() had drained the staged window before that read.
    staged_begin_ = 0;
    staged_end_ = just_read;
  } else if (last_read_ == Into::kFrame) {
    assembled_ += just_read;
  }
  last_read_ = Into::kNothing;
  const std::size_t staged = staged_end_ - staged_begin_;
  if (assembled_ == 0 && staged >= wire::kHeaderSize) {
    const std::uint8_t* at = staging_.get() + staged_begin_;
    const auto header = wire::read_header(wire::Bytes(at, wire::kHeaderSize));
    // A bad header, or a frame that goes on beyond the staged bytes, is
    // left to build() (which says why, or copies what is here).
    if (wire::check_header(header, max_message_size_) == wire::DecodeError::kNone &&
        static_cast<std::size_t>(header.message_length) <= staged) {
      view = wire::Bytes(at, static_cast<std::size_t>(header.message_length));
      staged_begin_ += view.size();
      out.ok = true;
      return true;
    }
  }
  if (!build(built, out)) return false;
  view = built;
  return true;
}

template <class Side>
bool FrameReader<Side>::build(std::vector<std::uint8_t>& frame, ReadOutcome& out) {
  if (assembled_ < wire::kHeaderSize) {
    // Never shrunk before the header is read: a frame the size of the last
    // one (the usual case) then costs no zero-filling of its body.
    if (frame.size() < wire::kHeaderSize) frame.resize(wire::kHeaderSize);
    assembled_ += take_kept(frame.data() + assembled_, wire::kHeaderSize - assembled_);
    if (assembled_ < wire::kHeaderSize) return stalled(out);
    const auto header = wire::read_header(frame);
    if (auto error = wire::check_header(header, max_message_size_);
        error != wire::DecodeError::kNone) {
      out = header_rejected(header, error);
      assembled_ = 0;
      return true;
    }
    frame.resize(static_cast<std::size_t>(header.message_length));
  }
  assembled_ += take_kept(frame.data() + assembled_, frame.size() - assembled_);
  if (assembled_ < frame.size()) return stalled(out);
  assembled_ = 0;
  out.ok = true;
  return true;
}

template <class Side>
awaitable<std::size_t> FrameReader<Side>::read_more(std::vector<std::uint8_t>& built) {
  auto& side = static_cast<Side&>(*this);
  if (side.must_wait()) return side.wait_for_watch();
  stream_error_ = {};
  if (assembled_ >= wire::kHeaderSize && built.size() - assembled_ >= kStagingBytes) {
    // Large bodies go straight into the frame.
    last_read_ = Into::kFrame;
    return stream_.read_some(asio::buffer(built.data() + assembled_, built.size() - assembled_),
                             stream_error_);
  }
  last_read_ = Into::kStaging;
  return stream_.read_some(asio::buffer(staging_.get(), kStagingBytes), stream_error_);
}

template <class Side>
bool FrameReader<Side>::stalled(ReadOutcome& out) {
  const error_code ec = stream_error_ ? stream_error_ : static_cast<const Side&>(*this).ended();
  if (!ec) return false;
  const bool in_header = assembled_ < wire::kHeaderSize;
  if (ec == asio::error::eof && assembled_ == 0) {
    out.clean_eof = true;
    out.reason = "closed by peer";
  } else if (ec == asio::error::eof) {
    out.rejected = wire::DecodeError::kTruncated;
    out.reason =
        in_header ? "connection ended inside a frame header" : "connection ended inside a frame";
  } else {
    out.reason = ec.message();
  }
  return true;
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

awaitable<std::size_t> ClientFrameReader::wait_for_watch() {
  while (watch_pending_ && !stopped_) co_await watch_done_.wait();
  co_return 0;
}

error_code ClientFrameReader::ended() const {
  if (eof_seen_) return read_error_ ? read_error_ : error_code(asio::error::eof);
  if (stopped_) return asio::error::operation_aborted;
  return {};
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
