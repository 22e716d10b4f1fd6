#include "proxy/client_writer.h"

namespace mongoguard::proxy {

awaitable<bool> ClientWriter::write(asio::const_buffer bytes, error_code& ec) {
  ec.clear();
  if (stopped_) co_return false;
  if (queued() >= kMaxQueued) {
    ec = asio::error::no_buffer_space;
    co_return false;
  }
  const std::uint64_t ticket = next_++;
  while (serving_ != ticket && !stopped_) co_await turn_.wait();
  if (stopped_) co_return false;
  const std::size_t sent = client_.write_now(bytes, ec);
  if (!ec && sent < bytes.size()) co_await client_.write(bytes + sent, ec);
  ++serving_;
  turn_.notify();
  co_return !ec && !stopped_;
}

std::size_t ClientWriter::write_at_once(asio::const_buffer bytes, error_code& ec) {
  ec.clear();
  if (stopped_) {
    ec = asio::error::operation_aborted;
    return 0;
  }
  if (queued() != 0) return 0;  // another write goes first
  return client_.write_now(bytes, ec);
}

}  // namespace mongoguard::proxy
