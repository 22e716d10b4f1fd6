#include "proxy/frame_reader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "loopback_pair.h"

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;
using Frame = std::vector<std::uint8_t>;

constexpr std::int32_t kMaxSize = 1 << 20;

void put_i32(Frame& f, std::size_t at, std::int32_t v) {
  for (int i = 0; i < 4; ++i)
    f[at + i] = static_cast<std::uint8_t>(static_cast<std::uint32_t>(v) >> (8 * i));
}

// A frame of `size` bytes (OP_MSG header, then bytes that differ by
// position and id) claiming `length`.
Frame make_frame(std::size_t size, std::int32_t id, std::int32_t length = -1) {
  Frame f(size);
  for (std::size_t i = 0; i < size; ++i) f[i] = static_cast<std::uint8_t>(i * 7 + id);
  put_i32(f, 0, length < 0 ? static_cast<std::int32_t>(size) : length);
  put_i32(f, 4, id);
  put_i32(f, 8, 0);
  put_i32(f, 12, 2013);
  return f;
}

Frame joined(const std::vector<Frame>& frames) {
  Frame out;
  for (const auto& f : frames) out.insert(out.end(), f.begin(), f.end());
  return out;
}

struct Reads {
  std::vector<Frame> frames;
  std::vector<ReadOutcome> outcomes;  // the last may be the failure
  int reads = 0;                      // read_more() calls
  std::vector<bool> in_place;         // per frame: read where it was staged
  bool done = false;
};

// The relay's loop: frames until `most` or a failure.
template <class Reader>
awaitable<void> read_frames(Reader& reader, std::size_t most, Reads& out) {
  Frame built;
  wire::Bytes frame;
  while (out.outcomes.size() < most) {
    ReadOutcome read;
    for (std::size_t n = 0; !reader.assemble(built, frame, read, n);) {
      ++out.reads;
      n = co_await reader.read_more(built);
    }
    out.outcomes.push_back(read);
    if (!read.ok) break;
    out.frames.emplace_back(frame.begin(), frame.end());
    out.in_place.push_back(frame.data() != built.data());
  }
  out.done = true;
}

// run_for() that also runs after the io_context ran out of work once.
void run_for(asio::io_context& io, std::chrono::milliseconds how_long) {
  if (io.stopped()) io.restart();
  io.run_for(how_long);
}

void run_until(asio::io_context& io, const bool& flag) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!flag && std::chrono::steady_clock::now() < give_up) run_for(io, 1ms);
}

// Writes all of `bytes` from the peer while the io_context runs (the
// socket buffers may be smaller).
void send_all(asio::io_context& io, tcp::socket& peer, const Frame& bytes) {
  peer.non_blocking(true);
  std::size_t sent = 0;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (sent < bytes.size() && std::chrono::steady_clock::now() < give_up) {
    error_code ec;
    sent += peer.write_some(asio::buffer(bytes.data() + sent, bytes.size() - sent), ec);
    if (ec && ec != asio::error::would_block) FAIL() << ec.message();
    run_for(io, 1ms);
  }
  ASSERT_EQ(sent, bytes.size());
}

struct UpstreamSide {
  explicit UpstreamSide(asio::io_context& context)
      : io(context), pair(context), reader(*pair.ours, kMaxSize) {}
  // Starts reading up to `most` frames into `got`.
  void start(std::size_t most) {
    asio::co_spawn(io, read_frames(reader, most, got), asio::detached);
  }
  // Runs until the reading ended; false if it did not within 10 s.
  bool finish() {
    run_until(io, got.done);
    return got.done;
  }
  asio::io_context& io;
  testing::LoopbackPair pair;
  UpstreamFrameReader reader;
  Reads got;
};

struct ClientSide {
  explicit ClientSide(asio::io_context& io) : pair(io), reader(*pair.ours, kMaxSize) {}
  testing::LoopbackPair pair;
  ClientFrameReader reader;
};

TEST(FrameReader, FramesArrivingAByteAtATimeAreAssembledWhole) {
  asio::io_context io;
  UpstreamSide side(io);
  const std::vector<Frame> frames = {make_frame(16, 1), make_frame(21, 2), make_frame(300, 3)};
  side.start(frames.size());
  for (std::uint8_t byte : joined(frames)) {
    side.pair.peer.write_some(asio::buffer(&byte, 1));
    run_for(io, 1ms);
  }
  ASSERT_TRUE(side.finish());
  EXPECT_EQ(side.got.frames, frames);
  // Split at every byte: one read per byte, each frame built from them.
  EXPECT_GE(side.got.reads, 300);
  EXPECT_EQ(side.got.in_place, std::vector<bool>(frames.size(), false));
}

TEST(FrameReader, SeveralFramesInOneWriteTakeOneRead) {
  asio::io_context io;
  UpstreamSide side(io);
  const std::vector<Frame> frames = {make_frame(100, 1), make_frame(200, 2), make_frame(16, 3)};
  send_all(io, side.pair.peer, joined(frames));
  side.start(frames.size());
  ASSERT_TRUE(side.finish());
  EXPECT_EQ(side.got.frames, frames);
  EXPECT_EQ(side.got.reads, 1);
  // All three were staged whole: none was copied.
  EXPECT_EQ(side.got.in_place, std::vector<bool>(frames.size(), true));
}

TEST(FrameReader, AFrameStagedWholeIsReadInPlaceAndOneSplitAcrossReadsIsBuilt) {
  asio::io_context io;
  UpstreamSide side(io);
  const Frame a = make_frame(100, 1), b = make_frame(80, 2), c = make_frame(60, 3);
  Frame first = a;
  first.insert(first.end(), b.begin(), b.begin() + 30);
  send_all(io, side.pair.peer, first);
  side.start(3);
  auto until_frames = [&](std::size_t n) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (side.got.frames.size() < n && std::chrono::steady_clock::now() < give_up) {
      run_for(io, 1ms);
    }
  };
  until_frames(1);
  run_for(io, 5ms);
  ASSERT_EQ(side.got.frames.size(), 1u);  // b is not whole yet
  send_all(io, side.pair.peer, Frame(b.begin() + 30, b.end()));
  until_frames(2);
  ASSERT_EQ(side.got.frames.size(), 2u);
  send_all(io, side.pair.peer, c);
  ASSERT_TRUE(side.finish());
  EXPECT_EQ(side.got.frames, (std::vector<Frame>{a, b, c}));
  EXPECT_EQ(side.got.in_place, (std::vector<bool>{true, false, true}));
}

TEST(FrameReader, LargeBodiesAndTheFramesBehindThemArriveIntact) {
  asio::io_context io;
  UpstreamSide side(io);
  const std::vector<Frame> frames = {make_frame(300 * 1024, 1), make_frame(50, 2),
                                     make_frame(FrameReader<UpstreamFrameReader>::kStagingBytes, 3),
                                     make_frame(40 * 1024, 4)};
  side.start(frames.size());
  send_all(io, side.pair.peer, joined(frames));
  ASSERT_TRUE(side.finish());
  ASSERT_EQ(side.got.frames.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(side.got.frames[i], frames[i]) << i;
  // Larger than the staging buffer: built, the body read straight into it.
  EXPECT_FALSE(side.got.in_place[0]);
  EXPECT_FALSE(side.got.in_place[3]);
}

ReadOutcome outcome_after(const Frame& bytes) {
  asio::io_context io;
  UpstreamSide side(io);
  side.start(2);
  send_all(io, side.pair.peer, bytes);
  side.pair.peer.shutdown(tcp::socket::shutdown_send);
  EXPECT_TRUE(side.finish());
  return side.got.outcomes.empty() ? ReadOutcome{} : side.got.outcomes.back();
}

TEST(FrameReader, AnEndBetweenFramesIsCleanAndOneInsideAFrameIsTruncation) {
  const Frame whole = make_frame(64, 1);
  auto out = outcome_after(whole);
  EXPECT_FALSE(out.ok);
  EXPECT_TRUE(out.clean_eof);
  EXPECT_EQ(out.rejected, wire::DecodeError::kNone);
  EXPECT_EQ(out.reason, "closed by peer");

  Frame in_header = whole;
  in_header.resize(64 + 5);  // a whole frame, then 5 bytes of a header
  out = outcome_after(in_header);
  EXPECT_FALSE(out.clean_eof);
  EXPECT_EQ(out.rejected, wire::DecodeError::kTruncated);
  EXPECT_EQ(out.reason, "connection ended inside a frame header");

  Frame in_body = make_frame(100, 2);
  in_body.resize(66);  // the header and 50 of its 84 body bytes
  out = outcome_after(in_body);
  EXPECT_FALSE(out.clean_eof);
  EXPECT_EQ(out.rejected, wire::DecodeError::kTruncated);
  EXPECT_EQ(out.reason, "connection ended inside a frame");
}

TEST(FrameReader, BadHeadersAreRejectedBeforeTheirBodiesAreRead) {
  Frame too_large = make_frame(16, 1, kMaxSize + 1);
  auto out = outcome_after(too_large);
  EXPECT_EQ(out.rejected, wire::DecodeError::kTooLarge);
  EXPECT_EQ(out.reason, "messageLength 1048577 exceeds limits.max_message_size 1048576");

  out = outcome_after(make_frame(16, 2, 8));
  EXPECT_EQ(out.rejected, wire::DecodeError::kTooShort);
  EXPECT_FALSE(out.ok);
}

TEST(FrameReader, AClientReadWaitsForTheWatchAndTakesWhatItKeptFirst) {
  asio::io_context io;
  ClientSide side(io);
  bool watched = false;
  side.reader.watch([&watched] { watched = true; });
  Reads got;
  asio::co_spawn(io, read_frames(side.reader, 2, got), asio::detached);
  run_for(io, 20ms);
  EXPECT_FALSE(got.done);  // waiting for the watch, not reading beside it
  const Frame first = make_frame(80, 1);
  const Frame second = make_frame(90, 2);
  Frame bytes = joined({first, second});
  // The watch's one read takes the first frame and part of the second.
  send_all(io, side.pair.peer, Frame(bytes.begin(), bytes.begin() + 100));
  run_until(io, watched);
  ASSERT_TRUE(watched);
  send_all(io, side.pair.peer, Frame(bytes.begin() + 100, bytes.end()));
  run_until(io, got.done);
  ASSERT_TRUE(got.done);
  EXPECT_EQ(got.frames, (std::vector<Frame>{first, second}));
}

TEST(FrameReader, AClientEndTheWatchSawEndsTheFrameBehindWhatItKept) {
  asio::io_context io;
  ClientSide side(io);
  int watched = 0;
  // Re-armed once, as a hold does: the first read takes the bytes, the
  // second the end of the stream.
  side.reader.watch([&] {
    ++watched;
    side.reader.watch([&watched] { ++watched; });
  });
  Frame five = make_frame(64, 1);
  five.resize(5);
  send_all(io, side.pair.peer, five);
  run_for(io, 20ms);
  side.pair.peer.shutdown(tcp::socket::shutdown_send);
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (watched < 2 && std::chrono::steady_clock::now() < give_up) run_for(io, 1ms);
  ASSERT_EQ(watched, 2);
  EXPECT_TRUE(side.reader.eof_seen());
  Reads got;
  asio::co_spawn(io, read_frames(side.reader, 1, got), asio::detached);
  run_until(io, got.done);
  ASSERT_TRUE(got.done);
  EXPECT_EQ(got.reads, 0);  // nothing more is read from a stream that ended
  EXPECT_EQ(got.outcomes.back().rejected, wire::DecodeError::kTruncated);
  EXPECT_EQ(got.outcomes.back().reason, "connection ended inside a frame header");
}

TEST(FrameReader, AClientReadWaitingForTheWatchGivesUpWhenTheSessionStops) {
  asio::io_context io;
  ClientSide side(io);
  side.reader.watch([] {});
  Reads got;
  asio::co_spawn(io, read_frames(side.reader, 1, got), asio::detached);
  run_for(io, 20ms);
  ASSERT_FALSE(got.done);
  side.reader.stop();
  run_until(io, got.done);
  ASSERT_TRUE(got.done);
  EXPECT_FALSE(got.outcomes.back().ok);
  EXPECT_FALSE(got.outcomes.back().clean_eof);
  EXPECT_EQ(got.outcomes.back().rejected, wire::DecodeError::kNone);
  EXPECT_EQ(got.outcomes.back().reason, error_code(asio::error::operation_aborted).message());
  side.pair.ours->lowest_layer().close();
  run_for(io, 20ms);
}

}  // namespace
}  // namespace mongoguard::proxy
