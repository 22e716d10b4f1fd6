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
// has already reported the socket. UntriedReads finds those: every socket
// whose read was queued without a try is polled once, within 100 ms, with
// all the others of its io_context in one poll() call. The poll reports a
// reset (or a socket closed both ways) without taking the error away, and
// such a socket is made to report itself to epoll again (shutdown() of a
// dead socket changes nothing else), so the waiting read then meets the
// reset as a read that tried would have. Never more polls than the tries
// spared: a socket is polled at most once per untried read.
//
// A read may still ask to try first (`untried` null: the hold watch, which
// must see a vanished client at once).
//
// This uses Asio's detail layer (the reactor, its operation type and the
// socket's implementation), which is stable within Boost 1.74, the version
// the build requires.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

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

// The sockets of one io_context whose read waits without having tried,
// each polled once within `interval` of that read's start (see the top of
// this file). Used on the io_context's thread only.
class UntriedReads : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  static constexpr std::chrono::milliseconds kInterval{100};

  // One socket's place in the list, kept by its owner beside the socket.
  class Entry {
   public:
    Entry(UntriedReads& list, tcp::socket& socket) : list_(&list), socket_(&socket) {}
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry() {
      if (listed_) list_->remove(*this);
    }

    // The socket's read is about to wait untried: poll it once, soon.
    void listen() {
      if (!listed_) list_->add(*this);
    }

   private:
    friend class UntriedReads;
    UntriedReads* list_;
    tcp::socket* socket_;
    bool listed_ = false;
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
  };

  explicit UntriedReads(asio::io_context& context);

  // Tests shorten the wait before a poll.
  void set_interval(std::chrono::milliseconds interval) { interval_ = interval; }

  // Polls made and sockets found dead by them, on this io_context.
  std::uint64_t polls() const { return polls_; }
  std::uint64_t woken() const { return woken_; }

 private:
  void add(Entry& entry);
  void remove(Entry& entry);
  void poll_listed();
  void shutdown() override;

  asio::basic_waitable_timer<std::chrono::steady_clock,
                             asio::wait_traits<std::chrono::steady_clock>, Executor>
      timer_;
  std::chrono::milliseconds interval_ = kInterval;
  bool armed_ = false;
  bool stopped_ = false;
  Entry* first_ = nullptr;
  std::vector<pollfd> polled_;
  std::uint64_t polls_ = 0;
  std::uint64_t woken_ = 0;
};

inline UntriedReads& untried_reads_of(asio::io_context& context) {
  return asio::use_service<UntriedReads>(context);
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
// whether its last read emptied it, kept by these reads. A read after one
// that emptied the socket waits untried and `untried` lists the socket for
// a poll; with `untried` null it is tried once first (see the top of this
// file).
//
// `executor` is the socket's own, as the io_context's concrete type: a
// handler on that same executor (every coroutine of the proxy) is then
// called in place when the read completes, as the reactor already runs on
// the io_context's thread, rather than dispatched through the socket's
// type-erased executor.
template <class Token>
auto async_read_some(tcp::socket& socket, detail::reactor& reactor, const Executor& executor,
                     asio::mutable_buffer buffer, bool& emptied, UntriedReads::Entry* untried,
                     Token&& token) {
  return asio::async_initiate<Token, void(error_code, std::size_t)>(
      [&socket, &reactor, &executor, buffer, &emptied, untried](auto handler) {
        using Handler = decltype(handler);
        using Op = ReadOp<Handler, Executor>;
        const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
        typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
        p.p = new (p.v) Op(socket.native_handle(), buffer, emptied, handler, executor);
        // The reactor tries at once unless the last read emptied the socket
        // and no readiness came since; the caller may want that try anyway.
        if (!untried && emptied && socket.is_open() &&
            p.p->perform() != detail::reactor_op::not_done) {
          reactor.post_immediate_completion(p.p, is_continuation);
        } else {
          if (untried && emptied) untried->listen();
          auto& impl = SocketAccess::implementation(socket);
          reactor.start_op(detail::reactor::read_op, impl.socket_, impl.reactor_data_, p.p,
                           is_continuation, true);
        }
        p.v = p.p = nullptr;
      },
      token);
}

}  // namespace mongoguard::proxy::drained
