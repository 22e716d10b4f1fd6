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
awaitable<void> read_once(Stream& stream, std::vector<char>& buffer, Read& read,
                          bool owed_a_write) {
  read.n = co_await stream.read_some(asio::buffer(buffer), read.ec, owed_a_write);
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
  explicit Reading(std::size_t buffer_size = 64) : buffer(buffer_size) {}

  // Starts a read. `owed_a_write` as the relay passes it when a reply is
  // owed: the read may wait without trying.
  void start(bool owed_a_write = true) {
    read = Read{};
    asio::co_spawn(io, read_once(*pair.ours, buffer, read, owed_a_write), asio::detached);
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
  std::string next(bool owed_a_write = true) {
    start(owed_a_write);
    run_until(read.done);
    return got();
  }

  // A read that is already waiting in epoll (as a relay's read mostly is,
  // so no readiness event is left over) when `send` runs: what it got.
  std::string next_after(const std::function<void()>& send, bool owed_a_write = true) {
    start(owed_a_write);
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
  // read after the last bytes tries at once and sees the end of the stream,
  // even when it may wait untried.
  for (const bool owed_a_write : {true, false}) {
    Reading r;
    const auto bye = [&] {
      send_all(r.pair.peer, "bye");
      r.pair.peer.shutdown(tcp::socket::shutdown_send);
    };
    EXPECT_EQ(r.next_after(bye, owed_a_write), "bye");
    EXPECT_EQ(r.next(owed_a_write), "") << owed_a_write;
    EXPECT_EQ(r.read.ec, asio::error::eof);
  }
}

TEST(DrainedRead, AResetThatCameWithTheLastBytesIsMetByTheNextTry) {
  // A reset is not reported as bytes left behind: a read that must hear of
  // it tries first.
  Reading r;
  EXPECT_EQ(r.next_after([&] { send_then_reset(r.pair.peer, "last"); }, false), "last");
  EXPECT_EQ(r.next(false), "");
  EXPECT_EQ(r.read.ec, asio::error::connection_reset);
}

TEST(DrainedRead, AResetThatCameWithTheLastBytesIsMetByTheWriteOwed) {
  // A read that may wait untried leaves the reset to the write it is owed.
  Reading r;
  EXPECT_EQ(r.next_after([&] { send_then_reset(r.pair.peer, "last"); }), "last");
  r.start();
  r.run_for(30ms);
  EXPECT_FALSE(r.read.done);
  error_code ec;
  r.pair.ours->write_now(asio::buffer("reply", 5), ec);
  EXPECT_EQ(ec, asio::error::connection_reset);
  // The relay closes the stream on that error, which ends the read.
  r.pair.ours->lowest_layer().close();
  r.run_until(r.read.done);
  EXPECT_EQ(r.read.ec, asio::error::operation_aborted);
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
