// Two Asio idioms, written once.
//
// Deadline: "give up on this operation after T". Asio's own operations take
// no timeout; the usual answer is a timer whose expiry closes the socket the
// operation waits on, which then fails with operation_aborted. Deadline is
// that timer, armed on construction and cancelled when it goes out of scope,
// so the caller cannot forget to cancel it on an early co_return.
//
// Event: "wake whoever waits when something changes". A steady_timer that
// never expires on its own; notify() cancels its pending waits, which wakes
// every waiter. A notify with no waiter is not remembered, so waiters check
// their condition in a loop: wait_until(pred) is that loop.
#pragma once

#include <chrono>
#include <memory>
#include <utility>

#include "proxy/net/asio.h"

namespace mongoguard::proxy {

class Deadline {
 public:
  // Calls `on_expiry()` on the executor if `after` passes before the
  // Deadline is cancelled or destroyed. `on_expiry` usually closes a socket;
  // it must keep alive what it touches (capture a shared_from_this()).
  template <class Executor, class OnExpiry>
  Deadline(const Executor& executor, std::chrono::steady_clock::duration after, OnExpiry on_expiry)
      : state_(std::make_shared<State>(executor)) {
    state_->timer.expires_after(after);
    state_->timer.async_wait(
        [state = state_, on_expiry = std::move(on_expiry)](error_code ec) mutable {
          if (ec || state->cancelled) return;
          state->expired = true;
          on_expiry();
        });
  }
  ~Deadline() { cancel(); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // True once the deadline passed (and on_expiry ran).
  bool expired() const { return state_->expired; }
  // The operation finished first: on_expiry will not run.
  void cancel() {
    state_->cancelled = true;
    state_->timer.cancel();
  }

 private:
  struct State {
    template <class Executor>
    explicit State(const Executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    bool expired = false;
    bool cancelled = false;
  };
  std::shared_ptr<State> state_;
};

class Event {
 public:
  template <class ExecutorOrContext>
  explicit Event(ExecutorOrContext&& where) : timer_(std::forward<ExecutorOrContext>(where)) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }

  // Wakes every coroutine waiting now. Call on the timer's executor.
  void notify() { timer_.cancel(); }

  // Suspends until the next notify() (or until the executor stops).
  awaitable<void> wait() {
    error_code ignored;
    co_await timer_.async_wait(asio::redirect_error(use_awaitable, ignored));
  }

  // Waits until `done()` holds, checking it after every notify().
  template <class Done>
  awaitable<void> wait_until(Done done) {
    while (!done()) co_await wait();
  }

  // Waits until `done()` holds or `deadline` passes; false on the deadline.
  template <class Done>
  awaitable<bool> wait_until(Done done, std::chrono::steady_clock::time_point deadline) {
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) co_return false;
      // A timer of our own for the deadline: notify() on it wakes this wait.
      auto self = this;
      Deadline bound(timer_.get_executor(), deadline - std::chrono::steady_clock::now(),
                     [self] { self->notify(); });
      co_await wait();
    }
    co_return true;
  }

 private:
  asio::steady_timer timer_;
};

}  // namespace mongoguard::proxy
