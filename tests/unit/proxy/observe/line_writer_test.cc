#include "proxy/observe/line_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proxy/observe/stalled_pipe.h"

namespace mongoguard::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string temp_file(const std::string& name) {
  auto path =
      std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(path);
  return path.string();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// "thread:index:" and a body whose length varies, so that a torn or
// interleaved line shows.
std::string line_for(int thread, int index) {
  return std::to_string(thread) + ":" + std::to_string(index) + ":" +
         std::string(static_cast<std::size_t>(index % 97), 'x');
}

TEST(LineWriter, LinesFromManyThreadsArriveWholeAndInOrderPerThread) {
  const auto path = temp_file("line-writer-threads");
  constexpr int kThreads = 8;
  constexpr int kLines = 2000;
  {
    LineWriter writer({}, "test", "mg-test");
    std::string error;
    ASSERT_TRUE(writer.open(path, error)) << error;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&writer, t] {
        for (int i = 0; i < kLines; ++i) EXPECT_TRUE(writer.append(line_for(t, i)));
      });
    }
    for (auto& thread : threads) thread.join();
  }  // the destructor writes what is queued
  const auto text = read_file(path);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::map<int, int> next;  // thread -> the index its next line must have
  const auto lines = lines_of(text);
  ASSERT_EQ(lines.size(), std::size_t{kThreads * kLines});
  for (const auto& line : lines) {
    const int thread = std::stoi(line);
    const int index = std::stoi(line.substr(line.find(':') + 1));
    ASSERT_EQ(line, line_for(thread, index));
    ASSERT_EQ(index, next[thread]++) << "thread " << thread << "'s lines out of order";
  }
  std::filesystem::remove(path);
}

TEST(LineWriter, FlushReturnsOnceQueuedLinesAreInTheFile) {
  const auto path = temp_file("line-writer-flush");
  LineWriter writer({}, "test", "mg-test");
  std::string error;
  ASSERT_TRUE(writer.open(path, error)) << error;
  writer.append("one");
  writer.append("two");
  writer.flush();
  EXPECT_EQ(read_file(path), "one\ntwo\n");
  writer.flush();  // nothing queued: returns at once
  std::filesystem::remove(path);
}

// Polls `path` until it holds `text` or `limit` has passed.
bool file_becomes(const std::string& path, const std::string& text,
                  std::chrono::milliseconds limit = 2s) {
  const auto give_up = Clock::now() + limit;
  while (read_file(path) != text) {
    if (Clock::now() > give_up) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(LineWriter, ALoneLineGoesAtOnceAndLinesRightBehindItAreGathered) {
  const auto path = temp_file("line-writer-gather");
  LineWriter::Limits limits;
  limits.gather = std::chrono::seconds(30);  // far longer than the test
  const auto start = Clock::now();
  {
    LineWriter writer(limits, "test", "mg-test");
    std::string error;
    ASSERT_TRUE(writer.open(path, error)) << error;
    writer.append("one");
    EXPECT_TRUE(file_becomes(path, "one\n")) << "a line after a quiet spell waits for nothing";
    // The writer now gathers: the next lines stay queued...
    writer.append("two");
    writer.append("three");
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(read_file(path), "one\n");
    // ... until a flush, which does not wait for the gathering to end.
    writer.flush();
    EXPECT_EQ(read_file(path), "one\ntwo\nthree\n");
    // A batch past kGatherBytes goes without a flush.
    const std::string big(LineWriter::kGatherBytes, 'b');
    writer.append(big);
    EXPECT_TRUE(file_becomes(path, "one\ntwo\nthree\n" + big + "\n"));
    // Stopping writes what is gathered.
    writer.append("last");
  }
  EXPECT_EQ(lines_of(read_file(path)).back(), "last");
  EXPECT_LT(Clock::now() - start, 20s) << "no step waited for the gathering to end";
  std::filesystem::remove(path);
}

TEST(LineWriter, AFullQueueEndsTheGathering) {
  const auto path = temp_file("line-writer-gather-full");
  LineWriter::Limits limits;
  limits.gather = std::chrono::seconds(30);
  limits.max_queued_bytes = 1024;  // below kGatherBytes
  limits.wait_for_room = std::chrono::seconds(10);
  LineWriter writer(limits, "test", "mg-test");
  std::string error;
  ASSERT_TRUE(writer.open(path, error)) << error;
  writer.append("one");
  ASSERT_TRUE(file_becomes(path, "one\n"));
  const std::string line(600, 'f');
  const auto start = Clock::now();
  EXPECT_TRUE(writer.append(line));
  EXPECT_TRUE(writer.append(line));  // finds no room: wakes the writer, waits
  EXPECT_LT(Clock::now() - start, 5s);
  writer.flush();
  EXPECT_EQ(read_file(path), "one\n" + line + "\n" + line + "\n");
  std::filesystem::remove(path);
}

TEST(LineWriter, WithGatheringOffEveryLineGoesAtOnce) {
  const auto path = temp_file("line-writer-no-gather");
  LineWriter::Limits limits;
  limits.gather = std::chrono::microseconds(0);
  LineWriter writer(limits, "test", "mg-test");
  std::string error;
  ASSERT_TRUE(writer.open(path, error)) << error;
  writer.append("one");
  ASSERT_TRUE(file_becomes(path, "one\n"));
  writer.append("two");
  EXPECT_TRUE(file_becomes(path, "one\ntwo\n"));
  std::filesystem::remove(path);
}

TEST(LineWriter, ReopeningSendsEarlierLinesToTheEarlierFile) {
  const auto first = temp_file("line-writer-first");
  const auto second = temp_file("line-writer-second");
  LineWriter writer({}, "test", "mg-test");
  std::string error;
  ASSERT_TRUE(writer.open(first, error)) << error;
  writer.append("before");
  ASSERT_TRUE(writer.open(first, error));  // the same file: nothing changes
  ASSERT_TRUE(writer.open(second, error)) << error;
  writer.append("after");
  EXPECT_FALSE(writer.open("/nonexistent-dir/x.log", error));
  EXPECT_NE(error.find("cannot open test /nonexistent-dir/x.log"), std::string::npos) << error;
  writer.flush();
  EXPECT_EQ(read_file(first), "before\n");
  EXPECT_EQ(read_file(second), "after\n");
  ASSERT_TRUE(writer.open("", error));  // off: lines go nowhere
  EXPECT_TRUE(writer.append("nowhere"));
  writer.flush();
  EXPECT_EQ(read_file(second), "after\n");
  std::filesystem::remove(first);
  std::filesystem::remove(second);
}

TEST(LineWriter, AFullQueueWaitsBrieflyOnceThenDropsUntilTheWriterCatchesUp) {
  testing::StalledPipe pipe("line-writer-stalled");
  ASSERT_TRUE(pipe.ok());
  LineWriter::Limits limits;
  limits.max_queued_bytes = 8 * 1024;
  limits.wait_for_room = 200ms;
  LineWriter writer(limits, "test", "mg-test");
  std::string error;
  ASSERT_TRUE(writer.open(pipe.path(), error)) << error;

  // The pipe takes 64 KiB and then blocks the writer thread; the queue then
  // fills. The append that finds it full waits for room, then drops.
  const std::string body(1000, 'y');
  int accepted = 0;
  Clock::duration first_drop{};
  for (int i = 0; i < 1000; ++i) {
    const auto start = Clock::now();
    if (!writer.append(std::to_string(i) + ":" + body)) {
      first_drop = Clock::now() - start;
      break;
    }
    ++accepted;
  }
  ASSERT_GT(accepted, 8);
  ASSERT_LT(accepted, 1000) << "the queue never filled";
  EXPECT_GE(first_drop, 150ms) << "waited for room first";
  EXPECT_LT(first_drop, 2s);
  // The next one does not wait again while the file is still stalled.
  const auto start = Clock::now();
  EXPECT_FALSE(writer.append("dropped at once:" + body));
  EXPECT_LT(Clock::now() - start, 100ms);

  // The file catches up: every accepted line arrives whole, and new lines
  // are taken again.
  pipe.drain();
  writer.flush();
  EXPECT_TRUE(writer.append("after"));
  writer.open("", error);  // closes the pipe: the reader sees its end
  pipe.join();
  const auto lines = lines_of(pipe.received());
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(accepted) + 1);
  for (int i = 0; i < accepted; ++i)
    EXPECT_EQ(lines[static_cast<std::size_t>(i)], std::to_string(i) + ":" + body);
  EXPECT_EQ(lines.back(), "after");
}

}  // namespace
}  // namespace mongoguard::proxy
