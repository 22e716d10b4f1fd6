#include "proxy/net/stream.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "proxy/net/async.h"

namespace mongoguard::proxy {

Stream::Stream(tcp::socket socket, ssl::context* context)
    : plain_(socket.get_executor()),
      reactor_(&drained::reactor_of(asio::query(plain_.get_executor(), asio::execution::context))),
      io_executor_(native_executor(plain_.get_executor())),
      untried_(drained::untried_reads_of(io_executor_.context()), plain_) {
  if (context) {
    tls_.emplace(std::move(socket), *context);
  } else {
    plain_ = std::move(socket);
  }
}

Stream::Stream(const executor_type& executor, ssl::context* context)
    : plain_(executor),
      reactor_(&drained::reactor_of(asio::query(executor, asio::execution::context))),
      io_executor_(native_executor(executor)),
      untried_(drained::untried_reads_of(io_executor_.context()), plain_) {
  if (context) tls_.emplace(tcp::socket(executor), *context);
}

std::size_t Stream::write_now(asio::const_buffer bytes, error_code& ec) {
  ec.clear();
  if (tls_ || !plain_.is_open() || bytes.size() == 0) return 0;
  for (;;) {
    // The system call itself rather than send(): glibc's wrapper turns
    // asynchronous cancellation on and off around it, which nothing here
    // needs (no thread of the proxy is ever cancelled).
    const auto n =
        static_cast<ssize_t>(::syscall(SYS_sendto, plain_.native_handle(), bytes.data(),
                                       bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL, nullptr, 0));
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec = error_code(errno, asio::error::get_system_category());
    }
    return 0;
  }
}

bool Stream::peer_gone() {
  auto& socket = lowest_layer();
  if (!socket.is_open()) return true;
  pollfd polled{socket.native_handle(), POLLRDHUP, 0};
  int ready;
  do {
    ready = ::poll(&polled, 1, 0);
  } while (ready < 0 && errno == EINTR);
  return ready > 0 && (polled.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) != 0;
}

void Stream::expect_server_name(const std::string& name, bool verify_hostname) {
  if (!tls_) return;
  expected_name_ = name;
  error_code ec;
  asio::ip::make_address(name, ec);
  if (ec) SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());  // SNI is for names only
  if (verify_hostname) {
    tls_->set_verify_callback(
        [check = ssl::host_name_verification(name), mismatch = &name_mismatch_](
            bool preverified, ssl::verify_context& ctx) mutable {
          const bool ok = check(preverified, ctx);
          if (preverified && !ok) *mismatch = true;
          return ok;
        });
  }
}

awaitable<void> Stream::handshake(ssl::stream_base::handshake_type type, error_code& ec) {
  if (!tls_) co_return;
  co_await tls_->async_handshake(type, asio::redirect_error(use_awaitable, ec));
}

std::string Stream::handshake_error(const error_code& ec) const {
  std::string out = ec.message();
  if (!tls_) return out;
  if (name_mismatch_) return out + " (the certificate does not name '" + expected_name_ + "')";
  auto* handle = const_cast<ssl::stream<tcp::socket>&>(*tls_).native_handle();
  const long result = SSL_get_verify_result(handle);
  if (result != X509_V_OK) out += std::string(" (") + X509_verify_cert_error_string(result) + ")";
  return out;
}

void Stream::close(std::shared_ptr<void> owner) {
  error_code ignored;
  if (!tls_ || !lowest_layer().is_open()) {
    lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
    lowest_layer().close(ignored);
    return;
  }
  // close_notify, then the socket. Bounded: a peer that never answers is
  // cut after a second.
  auto deadline =
      std::make_shared<Deadline>(get_executor(), std::chrono::seconds(1), [this, owner] {
        error_code ignored_inner;
        lowest_layer().close(ignored_inner);
      });
  tls_->async_shutdown([this, owner, deadline](error_code) {
    deadline->cancel();
    error_code ignored_inner;
    lowest_layer().shutdown(tcp::socket::shutdown_both, ignored_inner);
    lowest_layer().close(ignored_inner);
  });
}

}  // namespace mongoguard::proxy
