// One side of a session: a plain TCP socket or TLS over one. The relay reads
// and writes through these helpers whichever it is; they return Asio's own
// operations (no extra coroutine frame, no copy), so a plain connection pays
// one branch per call.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "proxy/net/drained_read.h"
#include "proxy/net/tls.h"

namespace mongoguard::proxy {

class Stream {
 public:
  using executor_type = tcp::socket::executor_type;

  // A TLS stream when `context` is given, else plain TCP.
  Stream(tcp::socket socket, ssl::context* context);
  Stream(const executor_type& executor, ssl::context* context);

  bool is_tls() const { return tls_.has_value(); }
  tcp::socket& lowest_layer() { return tls_ ? tls_->next_layer() : plain_; }
  const tcp::socket& lowest_layer() const { return tls_ ? tls_->next_layer() : plain_; }
  executor_type get_executor() { return lowest_layer().get_executor(); }

  // Reads at least `minimum` bytes into `buffers` (more if already there).
  template <typename MutableBuffers>
  awaitable<std::size_t> read_at_least(const MutableBuffers& buffers, std::size_t minimum,
                                       error_code& ec) {
    if (tls_) {
      return asio::async_read(*tls_, buffers, asio::transfer_at_least(minimum),
                              asio::redirect_error(use_awaitable, ec));
    }
    return asio::async_read(plain_, buffers, asio::transfer_at_least(minimum),
                            asio::redirect_error(use_awaitable, ec));
  }

  // Whatever is available (at least one byte, or an error), without the
  // composed read's layer of handler and executor. Plain TCP reads through
  // drained::async_read_some, which spares a read its failed try when the
  // last one emptied the socket; such a socket is polled once soon after,
  // for a reset that came with the last bytes (proxy/net/drained_read.h).
  awaitable<std::size_t> read_some(asio::mutable_buffer buffer, error_code& ec) {
    if (tls_) return tls_->async_read_some(buffer, asio::redirect_error(use_awaitable, ec));
    prepare_drained_reads();
    return drained::async_read_some(plain_, *reactor_, io_executor_, buffer, emptied_, &untried_,
                                    asio::redirect_error(use_awaitable, ec));
  }

  template <typename ConstBuffers>
  awaitable<std::size_t> write(const ConstBuffers& buffers, error_code& ec) {
    if (tls_) {
      return asio::async_write(*tls_, buffers, asio::redirect_error(use_awaitable, ec));
    }
    return asio::async_write(plain_, buffers, asio::redirect_error(use_awaitable, ec));
  }

  // Plain TCP: sends what the socket takes at once (one non-blocking send),
  // without an Asio operation, a posted completion and a coroutine resume
  // per frame. Returns the bytes sent: 0 with no error when the socket
  // buffer is full, and always 0 for TLS; the caller writes the rest with
  // write(). Only when no other write on this stream is in progress.
  std::size_t write_now(asio::const_buffer bytes, error_code& ec);

  // Whatever is available (at least one byte), with a plain callback. Tried
  // at once even after a read that emptied the socket: the hold watch must
  // see a client that reset with its last bytes without delay.
  template <typename Handler>
  void async_read_some(asio::mutable_buffer buffer, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffer, std::forward<Handler>(handler));
    } else {
      prepare_drained_reads();
      drained::async_read_some(plain_, *reactor_, io_executor_, buffer, emptied_, nullptr,
                               std::forward<Handler>(handler));
    }
  }

  // The peer reset the connection or sent its FIN (behind bytes not read
  // yet, too), or the socket is closed: one poll(), nothing read.
  bool peer_gone();

  // As the client side of TLS: SNI (unless `name` is an IP address) and,
  // when asked, the certificate must name `name`. Call before handshake.
  void expect_server_name(const std::string& name, bool verify_hostname);

  // A no-op for plain TCP.
  awaitable<void> handshake(ssl::stream_base::handshake_type type, error_code& ec);

  // Why a handshake failed, as precisely as OpenSSL can say.
  std::string handshake_error(const error_code& ec) const;

  // Closes at once (TCP). For TLS, close_notify is sent first when the peer
  // takes it within a second; either way the socket is closed by then.
  // `owner` keeps this stream alive until that is done.
  void close(std::shared_ptr<void> owner);

 private:
  // Before a read of plain_: the kernel asked to report what each read
  // leaves behind (once per socket), and the record of the last read reset
  // for a new socket.
  void prepare_drained_reads() {
    if (plain_.native_handle() == drained_fd_) return;
    drained_fd_ = plain_.native_handle();
    emptied_ = false;
    drained::report_bytes_left(plain_);
  }

  tcp::socket plain_;
  asio::detail::reactor* reactor_;        // plain_'s, for drained::async_read_some
  Executor io_executor_;                  // plain_'s, as its io_context's own type
  int drained_fd_ = -1;                   // the socket prepare_drained_reads() saw
  bool emptied_ = false;                  // plain_'s last read left nothing behind
  drained::UntriedReads::Entry untried_;  // plain_'s place in its poll list
  std::optional<ssl::stream<tcp::socket>> tls_;
  std::string expected_name_;
  bool name_mismatch_ = false;
};

}  // namespace mongoguard::proxy
