#include "proxy/net/drained_read.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

namespace mongoguard::proxy::drained {

// The timer is made here, so its service is registered before this one and
// outlives it (an io_context destroys its services newest first).
UntriedReads::UntriedReads(asio::io_context& context)
    : asio::execution_context::service(context), timer_(context.get_executor()) {}

void UntriedReads::add(Entry& entry) {
  if (stopped_) return;
  entry.listed_ = true;
  entry.prev_ = nullptr;
  entry.next_ = first_;
  if (first_) first_->prev_ = &entry;
  first_ = &entry;
  if (armed_) return;
  armed_ = true;
  timer_.expires_after(interval_);
  timer_.async_wait([this](error_code ec) {
    armed_ = false;
    if (!ec) poll_listed();
  });
}

void UntriedReads::remove(Entry& entry) {
  if (entry.prev_) {
    entry.prev_->next_ = entry.next_;
  } else {
    first_ = entry.next_;
  }
  if (entry.next_) entry.next_->prev_ = entry.prev_;
  entry.listed_ = false;
  entry.prev_ = entry.next_ = nullptr;
}

// Every listed socket that is still open, in one poll() that waits for
// nothing. POLLERR (a pending error: the reset) and POLLHUP (closed both
// ways) are reported without being taken away. For such a socket
// shutdown(SHUT_RD) changes nothing but wakes the socket's waiters, so
// epoll reports it again and the reactor performs the waiting read, which
// meets the error. The list is emptied: a socket's next untried read lists
// it again.
void UntriedReads::poll_listed() {
  polled_.clear();
  while (Entry* entry = first_) {
    if (entry->socket_->is_open()) {
      polled_.push_back({entry->socket_->native_handle(), POLLIN, 0});
    }
    remove(*entry);
  }
  if (polled_.empty()) return;
  ++polls_;
  int ready;
  do {
    ready = ::poll(polled_.data(), polled_.size(), 0);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return;
  for (const auto& polled : polled_) {
    if ((polled.revents & (POLLERR | POLLHUP)) == 0) continue;
    ::shutdown(polled.fd, SHUT_RD);
    ++woken_;
  }
}

// Sockets still listed belong to sessions the io_context is destroying;
// their entries must not reach back into this list once it is gone.
void UntriedReads::shutdown() {
  stopped_ = true;
  while (first_) remove(*first_);
}

}  // namespace mongoguard::proxy::drained
