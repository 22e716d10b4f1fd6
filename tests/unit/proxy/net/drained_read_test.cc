#include "proxy/net/drained_read.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "loopback_pair.h"

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;

struct Read {
  bool done = false;
  std::size_t n = 0;
  error_code ec;
};

// A plain coroutine with its state in its own frame (see client_writer_test).
awaitable<void> read_once(Stream& stream, std::vector<char>& buffer, Read& read) {
  read.n = co_await stream.read_some(asio::buffer(buffer), read.ec);
  read.done = true;
}

void send_all(tcp::socket& socket, const std::string& bytes, int flags = 0) {
  ASSERT_EQ(::send(socket.native_handle(), bytes.data(), bytes.size(), flags),
            static_cast<ssize_t>(bytes.size()));
}

// Sends `bytes` and then a reset (SO_LINGER 0) instead of a FIN.
void send_then_reset(tcp::socket& socket, const std::string& bytes) {
  send_all(socket, bytes);
  socket.set_option(asio::socket_base::linger(true, 0));
  socket.close();
}

// One side of a loopback pair read through Stream::read_some.
struct Reading {
  // Polls for resets come after `poll_after` (a long wait by default, so
  // that only the tests of the poll see one).
  explicit Reading(std::size_t buffer_size = 64, std::chrono::milliseconds poll_after = 10s)
      : buffer(buffer_size) {
    untried().set_interval(poll_after);
  }

  drained::UntriedReads& untried() { return drained::untried_reads_of(io); }

  // Starts a read.
  void start() {
    read = Read{};
    asio::co_spawn(io, read_once(*pair.ours, buffer, read), asio::detached);
  }

  // Runs the io_context for `time`. It stops itself when it runs out of
  // work (a read done, nothing queued), so it is restarted first.
  void run_for(std::chrono::milliseconds time) {
    io.restart();
    io.run_for(time);
  }

  // Runs until `done` or `limit` has passed.
  void run_until(const bool& done, std::chrono::milliseconds limit = 2s) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < give_up) run_for(2ms);
  }

  // Starts a read and runs until it is done: what it got.
  std::string next() {
    start();
    run_until(read.done);
    return got();
  }

  // A read that is already waiting in epoll (as a relay's read mostly is,
  // so no readiness event is left over) when `send` runs: what it got.
  std::string next_after(const std::function<void()>& send) {
    start();
    run_for(10ms);
    EXPECT_FALSE(read.done);
    send();
    std::this_thread::sleep_for(10ms);
    run_until(read.done);
    return got();
  }

  std::string got() const {
    EXPECT_TRUE(read.done);
    return std::string(buffer.data(), read.done ? read.n : 0);
  }

  asio::io_context io;
  testing::LoopbackPair pair{io};
  std::vector<char> buffer;
  Read read;
};

TEST(DrainedRead, AReadThatEmptiedTheSocketMakesTheNextWaitForEpollWithoutTrying) {
  Reading r(16 * 1024);
  EXPECT_EQ(r.next_after([&] { send_all(r.pair.peer, "first"); }), "first");
  EXPECT_FALSE(r.read.ec);

  // The next read waits without a recv that would fail with EAGAIN.
  const auto empty_before = drained::empty_tries();
  r.start();
  r.run_for(30ms);
  EXPECT_FALSE(r.read.done);
  EXPECT_EQ(drained::empty_tries(), empty_before);

  send_all(r.pair.peer, "second");
  r.run_until(r.read.done);
  EXPECT_EQ(r.got(), "second");
  EXPECT_EQ(drained::empty_tries(), empty_before);
}

TEST(DrainedRead, BytesThatArriveBetweenTwoReadsAreRead) {
  Reading r(16 * 1024);
  send_all(r.pair.peer, "one");
  EXPECT_EQ(r.next(), "one");

  // Sent while nothing waits: epoll reports it only when the io_context
  // next polls, after the next read has been queued without trying.
  send_all(r.pair.peer, "two");
  EXPECT_EQ(r.next(), "two");

  // Sent and reported by epoll while no read was queued: the readiness is
  // kept for the next read, which then tries at once.
  send_all(r.pair.peer, "three");
  r.run_for(30ms);
  EXPECT_EQ(r.next(), "three");
}

TEST(DrainedRead, AFullBufferIsNotTakenForAnEmptiedSocket) {
  Reading r(4);
  send_all(r.pair.peer, "abcdefghij");
  std::string got;
  for (int i = 0; i < 3; ++i) got += r.next();
  EXPECT_FALSE(r.read.ec);
  EXPECT_EQ(got, "abcdefghij");
}

TEST(DrainedRead, TheEndOfTheStreamAndAnErrorAreReported) {
  Reading r;
  send_all(r.pair.peer, "last");
  r.pair.peer.shutdown(tcp::socket::shutdown_send);
  EXPECT_EQ(r.next(), "last");
  EXPECT_EQ(r.next(), "");
  EXPECT_EQ(r.read.ec, asio::error::eof);

  // A read of a closed socket fails at once.
  r.pair.ours->lowest_layer().close();
  r.next();
  EXPECT_TRUE(r.read.ec);
}

TEST(DrainedRead, AWaitingReadIsCancelledWhenTheSocketCloses) {
  Reading r;
  r.start();
  r.run_for(10ms);
  ASSERT_FALSE(r.read.done);
  r.pair.ours->lowest_layer().close();
  r.run_until(r.read.done);
  EXPECT_EQ(r.got(), "");
  EXPECT_EQ(r.read.ec, asio::error::operation_aborted);
}

TEST(DrainedRead, AFinThatCameWithTheLastBytesIsReadAtOnce) {
  // The kernel reports a FIN still to be read as bytes left behind, so the
  // read after the last bytes tries at once and sees the end of the stream.
  Reading r;
  const auto bye = [&] {
    send_all(r.pair.peer, "bye");
    r.pair.peer.shutdown(tcp::socket::shutdown_send);
  };
  EXPECT_EQ(r.next_after(bye), "bye");
  const auto empty_before = drained::empty_tries();
  EXPECT_EQ(r.next(), "");
  EXPECT_EQ(r.read.ec, asio::error::eof);
  EXPECT_EQ(r.untried().polls(), 0u);
  EXPECT_EQ(drained::empty_tries(), empty_before);
}

TEST(DrainedRead, AResetThatCameWithTheLastBytesIsFoundByThePoll) {
  // A reset is not reported as bytes left behind: the next read waits
  // untried, and the poll that follows wakes it to meet the reset.
  Reading r(64, 30ms);
  EXPECT_EQ(r.next_after([&] { send_then_reset(r.pair.peer, "last"); }), "last");
  const auto empty_before = drained::empty_tries();
  const auto started = std::chrono::steady_clock::now();
  r.start();
  r.run_for(10ms);
  EXPECT_FALSE(r.read.done);
  r.run_until(r.read.done);
  EXPECT_TRUE(r.read.done);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 30ms);
  EXPECT_EQ(r.read.ec, asio::error::connection_reset);
  EXPECT_EQ(r.untried().polls(), 1u);
  EXPECT_EQ(r.untried().woken(), 1u);
  EXPECT_EQ(drained::empty_tries(), empty_before);
}

TEST(DrainedRead, ALiveSocketIsPolledOnceAndLeftAlone) {
  Reading r(64, 20ms);
  EXPECT_EQ(r.next_after([&] { send_all(r.pair.peer, "one"); }), "one");
  r.start();
  r.run_for(100ms);
  EXPECT_FALSE(r.read.done);
  // Polled once for the read that waits untried, and not again while it
  // keeps waiting: any reset from now on reaches epoll by itself.
  EXPECT_EQ(r.untried().polls(), 1u);
  EXPECT_EQ(r.untried().woken(), 0u);
  send_all(r.pair.peer, "two");
  r.run_until(r.read.done);
  EXPECT_EQ(r.got(), "two");
  EXPECT_FALSE(r.read.ec);

  // A reset after the poll is reported by epoll to the waiting read.
  r.start();
  r.run_for(60ms);
  EXPECT_EQ(r.untried().polls(), 2u);
  r.pair.peer.set_option(asio::socket_base::linger(true, 0));
  r.pair.peer.close();
  r.run_until(r.read.done);
  EXPECT_EQ(r.read.ec, asio::error::connection_reset);
  EXPECT_EQ(r.untried().woken(), 0u);
}

TEST(DrainedRead, AStreamGoneBeforeItsPollLeavesTheList) {
  // Two streams listed; one is destroyed before the poll, the other's reset
  // is still found. (Under the sanitizers, a dangling entry fails here.)
  Reading r(64, 20ms);
  testing::LoopbackPair other(r.io);
  EXPECT_EQ(r.next_after([&] { send_then_reset(r.pair.peer, "last"); }), "last");
  std::vector<char> other_buffer(64);
  Read first_read, other_read;
  send_all(other.peer, "x");
  asio::co_spawn(r.io, read_once(*other.ours, other_buffer, first_read), asio::detached);
  r.run_until(first_read.done);
  ASSERT_EQ(first_read.n, 1u);
  asio::co_spawn(r.io, read_once(*other.ours, other_buffer, other_read), asio::detached);
  r.start();
  r.run_for(5ms);
  other.ours->lowest_layer().close();
  r.run_until(other_read.done);
  other.ours.reset();
  r.run_until(r.read.done);
  EXPECT_EQ(r.read.ec, asio::error::connection_reset);
  EXPECT_EQ(r.untried().woken(), 1u);
}

TEST(DrainedRead, BytesBehindAnUrgentMarkAreReadWithoutWaiting) {
  // A read stops at TCP's urgent mark (the MongoDB protocol never sends
  // urgent data) with bytes behind it; those count as left behind, so the
  // next read takes them at once.
  Reading r;
  const auto urgent = [&] {
    send_all(r.pair.peer, "before");
    send_all(r.pair.peer, "!", MSG_OOB);
    send_all(r.pair.peer, "after");
  };
  EXPECT_EQ(r.next_after(urgent), "before");
  EXPECT_EQ(r.next(), "after");
}

// The held client's watch: Stream::async_read_some, with a callback.
struct Watch {
  void start(Stream& stream) {
    stream.async_read_some(asio::buffer(buffer), [this](error_code e, std::size_t got) {
      done = true;
      ec = e;
      n = got;
    });
  }
  bool done = false;
  std::size_t n = 0;
  error_code ec;
  std::vector<char> buffer = std::vector<char>(64);
};

TEST(DrainedRead, TheHoldWatchSeesAClientThatVanishedWithItsLastBytes) {
  Reading r;
  EXPECT_EQ(r.next_after([&] { send_then_reset(r.pair.peer, "frame"); }), "frame");
  Watch watch;
  watch.start(*r.pair.ours);
  r.run_until(watch.done);
  ASSERT_TRUE(watch.done);
  EXPECT_EQ(watch.ec, asio::error::connection_reset);
}

TEST(DrainedRead, TheHoldWatchReadsAClientThatStayed) {
  Reading r;
  EXPECT_EQ(r.next_after([&] { send_all(r.pair.peer, "frame"); }), "frame");
  Watch watch;
  watch.start(*r.pair.ours);
  r.run_for(20ms);
  EXPECT_FALSE(watch.done);
  send_all(r.pair.peer, "gone?");
  r.run_until(watch.done);
  ASSERT_TRUE(watch.done);
  EXPECT_FALSE(watch.ec);
  EXPECT_EQ(std::string(watch.buffer.data(), watch.n), "gone?");
}

}  // namespace
}  // namespace mongoguard::proxy
