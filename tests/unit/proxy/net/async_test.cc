#include "proxy/net/async.h"

#include <gtest/gtest.h>

#include <chrono>

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;

TEST(Deadline, RunsOnExpiryWhenTheOperationOutlastsIt) {
  asio::io_context io;
  int fired = 0;
  auto deadline = std::make_unique<Deadline>(io.get_executor(), 5ms, [&] { ++fired; });
  io.run_for(200ms);
  EXPECT_EQ(fired, 1);
  EXPECT_TRUE(deadline->expired());
}

TEST(Deadline, CancelledOrDestroyedBeforeExpiryNeverRuns) {
  asio::io_context io;
  int fired = 0;
  {
    Deadline cancelled(io.get_executor(), 5ms, [&] { ++fired; });
    cancelled.cancel();
    EXPECT_FALSE(cancelled.expired());
    Deadline destroyed(io.get_executor(), 5ms, [&] { ++fired; });
  }
  io.run_for(50ms);
  EXPECT_EQ(fired, 0);
}

TEST(Event, NotifyWakesEveryWaiterAndWaitUntilChecksItsCondition) {
  asio::io_context io;
  Event event(io);
  bool ready = false;
  int woken = 0;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await event.wait_until([&] { return ready; });
          ++woken;
        },
        asio::detached);
  }
  io.run_for(10ms);
  event.notify();  // the condition is still false: everyone waits again
  io.run_for(10ms);
  EXPECT_EQ(woken, 0);
  ready = true;
  event.notify();
  io.run_for(50ms);
  EXPECT_EQ(woken, 3);
}

TEST(Event, WaitUntilWithADeadlineSaysWhetherTheConditionCameFirst) {
  asio::io_context io;
  Event event(io);
  bool ready = false;
  std::optional<bool> timed, notified;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        timed = co_await event.wait_until([] { return false; },
                                          std::chrono::steady_clock::now() + 20ms);
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        notified = co_await event.wait_until([&] { return ready; },
                                             std::chrono::steady_clock::now() + 10s);
      },
      asio::detached);
  io.run_for(50ms);
  ASSERT_TRUE(timed.has_value());
  EXPECT_FALSE(*timed);
  EXPECT_FALSE(notified.has_value());
  ready = true;
  event.notify();
  io.run_for(50ms);
  ASSERT_TRUE(notified.has_value());
  EXPECT_TRUE(*notified);
}

}  // namespace
}  // namespace mongoguard::proxy
