#include "proxy/client_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "loopback_pair.h"

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;

using Pair = testing::LoopbackPair;

// One writer's turn, as a plain coroutine with its state in its own frame.
// A capturing lambda coroutine here read its captured references as null
// after suspending, in the UBSan build (GCC 12).
awaitable<void> write_one(ClientWriter& writer, const std::string& bytes, int& result,
                          error_code& ec) {
  const bool ok = co_await writer.write(asio::buffer(bytes), ec);
  result = ok ? 1 : 0;
}

TEST(ClientWriter, WritesGoOutWholeInTheOrderTheWritersCameAndTheQueueIsBounded) {
  asio::io_context io;
  Pair pair(io);
  ClientWriter writer(*pair.ours);
  // Larger than the socket buffers: the first write waits for the peer.
  const std::string big(8 * 1024 * 1024, 'a');
  std::vector<std::string> parts = {big, "b", "c", "d", "e"};
  std::vector<int> results(parts.size(), -1);
  std::vector<error_code> errors(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    asio::co_spawn(io, write_one(writer, parts[i], results[i], errors[i]), asio::detached);
  }
  io.run_for(50ms);
  // One writing, three waiting: the fifth found the queue full.
  EXPECT_EQ(writer.queued(), ClientWriter::kMaxQueued);
  EXPECT_EQ(results[4], 0);
  EXPECT_EQ(errors[4], asio::error::no_buffer_space);

  std::string received;
  const std::size_t expected = big.size() + 3;
  std::vector<char> chunk(64 * 1024);
  pair.peer.non_blocking(true);
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (received.size() < expected && std::chrono::steady_clock::now() < give_up) {
    error_code ec;
    const auto n = pair.peer.read_some(asio::buffer(chunk), ec);
    if (ec == asio::error::would_block) {
      io.run_for(1ms);
      continue;
    }
    ASSERT_FALSE(ec);
    received.append(chunk.data(), n);
  }
  io.run_for(20ms);
  EXPECT_EQ(received.substr(big.size()), "bcd");
  EXPECT_EQ(received.find_first_not_of('a'), big.size());
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(results[i], 1) << i;
  EXPECT_EQ(writer.queued(), 0u);
}

TEST(ClientWriter, StoppedWritersGiveUpWithoutAnError) {
  asio::io_context io;
  Pair pair(io);
  ClientWriter writer(*pair.ours);
  writer.stop();
  int result = -1;
  error_code ec;
  const std::string x = "x";
  asio::co_spawn(io, write_one(writer, x, result, ec), asio::detached);
  io.run_for(20ms);
  EXPECT_EQ(result, 0);
  EXPECT_FALSE(ec);
}

}  // namespace
}  // namespace mongoguard::proxy
