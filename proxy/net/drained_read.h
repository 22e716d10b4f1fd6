// A read of a plain TCP socket through Asio's own reactor that, unlike
// Asio 1.74's socket read, tells the reactor when it emptied the socket.
//
// Asio tries every read at once before it waits in epoll, and it believes a
// socket drained only when a read returns 0 bytes (end of stream). So after
// each relayed frame the next read of that socket is tried, fails with
// EAGAIN, and only then waits: one wasted system call per frame and
// direction. Here the kernel says how many bytes a read left behind (the
// TCP_INQ socket option: a control message on every recvmsg, non-zero also
// when the peer's FIN is still to be read, and counting the bytes behind
// an urgent mark). A read that left nothing says `done_and_exhausted`, and
// the reactor then queues the next read without trying it; the next
// readiness event from epoll turns trying back on, whether or not a read
// was waiting then (the reactor's `try_speculative_`). Bytes and a FIN that
// arrive after the read therefore always wake a waiting read or let the
// next one try at once.
//
// What TCP_INQ cannot report is a reset (RST) that arrived with the last
// bytes: the next read would fail at once, but waits instead, since epoll
// has already reported the socket. A waiting read is therefore only asked
// to skip its try when the caller knows it will write to the socket before
// it needs to hear from it (a reply is owed to the client; no reply is
// owed by the server), and that write meets the reset. Every other read
// (`try_first`) tries once before it waits, as Asio's own does.
//
// This uses Asio's detail layer (the reactor, its operation type and the
// socket's implementation), which is stable within Boost 1.74, the version
// the build requires.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "proxy/net/asio.h"

namespace mongoguard::proxy::drained {

namespace detail = asio::detail;

// The reactor every socket of `context` is registered with.
inline detail::reactor& reactor_of(asio::execution_context& context) {
  return asio::use_service<detail::reactor>(context);
}

// A socket's implementation (descriptor, state and reactor registration),
// which basic_socket keeps protected. A pointer to a protected member may be
// formed through a derived class and applied to any object of the base.
struct SocketAccess : tcp::socket {
  static auto& implementation(tcp::socket& socket) {
    return (socket.*(&SocketAccess::impl_)).get_implementation();
  }
};

// Reads of this thread that found nothing there (EAGAIN) and went on to
// wait: the tries this file exists to spare, counted for its tests.
inline thread_local std::uint64_t empty_tries_count = 0;
inline std::uint64_t empty_tries() { return empty_tries_count; }

// Asks the kernel to report, with every read of `socket`, the bytes left
// behind. False when it cannot (reads then never mark the socket empty).
inline bool report_bytes_left(tcp::socket& socket) {
  const int on = 1;
  return ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on) == 0;
}

// One non-blocking recvmsg: done (with the bytes, end of stream or an
// error), done_and_exhausted when it left nothing behind, or not done when
// nothing is there yet. `emptied` says whether it left nothing. The system
// call itself rather than recvmsg(): glibc's wrapper turns asynchronous
// cancellation on and off around it, which nothing here needs.
inline detail::reactor_op::status receive_once(int fd, void* data, std::size_t size, error_code& ec,
                                               std::size_t& received, bool& emptied) {
  using status = detail::reactor_op::status;
  received = 0;
  emptied = false;
  if (size == 0) {
    ec.clear();
    return status::done;
  }
  iovec part{data, size};
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int))];
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  for (;;) {
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const auto n = static_cast<ssize_t>(::syscall(SYS_recvmsg, fd, &message, MSG_DONTWAIT));
    if (n > 0) {
      ec.clear();
      received = static_cast<std::size_t>(n);
      const cmsghdr* left = CMSG_FIRSTHDR(&message);
      if (left && left->cmsg_level == IPPROTO_TCP && left->cmsg_type == TCP_CM_INQ &&
          left->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int bytes_left = 0;
        std::memcpy(&bytes_left, CMSG_DATA(left), sizeof bytes_left);
        emptied = bytes_left == 0;
      }
      return emptied ? status::done_and_exhausted : status::done;
    }
    if (n == 0) {
      ec = asio::error::eof;
      return status::done_and_exhausted;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      ++empty_tries_count;
      return status::not_done;
    }
    ec = error_code(errno, asio::error::get_system_category());
    return status::done;
  }
}

template <class Handler, class IoExecutor>
class ReadOp : public detail::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(ReadOp);

  ReadOp(int fd, asio::mutable_buffer buffer, bool& emptied, Handler& handler,
         const IoExecutor& io_executor)
      : detail::reactor_op(error_code(), &ReadOp::perform_read, &ReadOp::complete_read),
        fd_(fd),
        buffer_(buffer),
        emptied_(emptied),
        handler_(std::move(handler)),
        work_(handler_, io_executor) {}

 private:
  static status perform_read(detail::reactor_op* base) {
    auto* op = static_cast<ReadOp*>(base);
    return receive_once(op->fd_, op->buffer_.data(), op->buffer_.size(), op->ec_,
                        op->bytes_transferred_, op->emptied_);
  }

  // `owner` is null when the reactor is destroyed with the operation still
  // queued: the operation is freed without calling its handler.
  static void complete_read(void* owner, detail::operation* base, const error_code&, std::size_t) {
    auto* op = static_cast<ReadOp*>(base);
    ptr p = {std::addressof(op->handler_), op, op};
    detail::handler_work<Handler, IoExecutor> work(std::move(op->work_));
    // The handler is moved out and the operation's memory freed before the
    // call, so the handler may start the next read in the same memory.
    detail::binder2<Handler, error_code, std::size_t> call(op->handler_, op->ec_,
                                                           op->bytes_transferred_);
    p.h = std::addressof(call.handler_);
    p.reset();
    if (owner) {
      detail::fenced_block fence(detail::fenced_block::half);
      work.complete(call, call.handler_);
    }
  }

  int fd_;
  asio::mutable_buffer buffer_;
  // The caller's record of whether the last read emptied the socket. Only
  // perform_read writes it, and the reactor calls that only while the
  // socket is open, so the caller (which owns the socket) outlives it.
  bool& emptied_;
  Handler handler_;
  detail::handler_work<Handler, IoExecutor> work_;
};

// Reads what is there (at least one byte, end of stream or an error) into
// `buffer`, as socket.async_read_some() does. `reactor` must be the one of
// the socket's execution context; `emptied` is the socket's record of
// whether its last read emptied it, kept by these reads. With `try_first`
// a socket the last read emptied is tried once before the read waits (see
// the top of this file); without it the reactor decides.
//
// `executor` is the socket's own, as the io_context's concrete type: a
// handler on that same executor (every coroutine of the proxy) is then
// called in place when the read completes, as the reactor already runs on
// the io_context's thread, rather than dispatched through the socket's
// type-erased executor.
template <class Token>
auto async_read_some(tcp::socket& socket, detail::reactor& reactor, const Executor& executor,
                     asio::mutable_buffer buffer, bool& emptied, bool try_first, Token&& token) {
  return asio::async_initiate<Token, void(error_code, std::size_t)>(
      [&socket, &reactor, &executor, buffer, &emptied, try_first](auto handler) {
        using Handler = decltype(handler);
        using Op = ReadOp<Handler, Executor>;
        const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
        typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
        p.p = new (p.v) Op(socket.native_handle(), buffer, emptied, handler, executor);
        // The reactor tries at once unless the last read emptied the socket
        // and no readiness came since; the caller may want that try anyway.
        if (try_first && emptied && socket.is_open() &&
            p.p->perform() != detail::reactor_op::not_done) {
          reactor.post_immediate_completion(p.p, is_continuation);
        } else {
          auto& impl = SocketAccess::implementation(socket);
          reactor.start_op(detail::reactor::read_op, impl.socket_, impl.reactor_data_, p.p,
                           is_continuation, true);
        }
        p.v = p.p = nullptr;
      },
      token);
}

}  // namespace mongoguard::proxy::drained
