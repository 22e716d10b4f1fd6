// Every fuzz target's seeds (tests/fuzz/corpus/<target>/) and committed
// crash reproducers (tests/fuzz/regressions/<target>/) run through the
// target's own entry point here, so a crash the fuzzer once found stays a
// failing unit test until it is fixed, also in builds without libFuzzer.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define MG_FUZZ_TARGET(name) extern "C" int mg_fuzz_##name(const std::uint8_t*, std::size_t);
#include "fuzz_targets.inc"
#undef MG_FUZZ_TARGET

namespace {

namespace fs = std::filesystem;
using Entry = int (*)(const std::uint8_t*, std::size_t);

struct FuzzTarget {
  std::string name;  // "frame_decoder" for frame_decoder_fuzz
  Entry entry;
};

const std::vector<FuzzTarget>& targets() {
  static const std::vector<FuzzTarget> all = {
#define MG_FUZZ_TARGET(name) \
  {std::string(#name).substr(0, std::string(#name).size() - 5), &mg_fuzz_##name},
#include "fuzz_targets.inc"
#undef MG_FUZZ_TARGET
  };
  return all;
}

const fs::path kFuzzDir = fs::path(MG_FUZZ_CORPUS_DIR).parent_path();

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path());
  }
  return out;
}

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void replay(const FuzzTarget& t, const fs::path& dir, std::size_t& count) {
  for (const auto& path : files_in(dir)) {
    SCOPED_TRACE(path.string());
    const auto bytes = read_bytes(path);
    // libFuzzer never passes a null pointer; keep that promise.
    const std::uint8_t empty = 0;
    EXPECT_EQ(t.entry(bytes.empty() ? &empty : bytes.data(), bytes.size()), 0);
    ++count;
  }
}

TEST(FuzzReplay, EveryTargetHasSeeds) {
  ASSERT_FALSE(targets().empty());
  for (const auto& t : targets()) {
    EXPECT_FALSE(files_in(kFuzzDir / "corpus" / t.name).empty()) << "no seeds for " << t.name;
  }
}

TEST(FuzzReplay, SeedsAndReproducersRunClean) {
  for (const auto& t : targets()) {
    std::size_t count = 0;
    replay(t, kFuzzDir / "corpus" / t.name, count);
    replay(t, kFuzzDir / "regressions" / t.name, count);
    EXPECT_GT(count, 0u) << t.name;
  }
}

}  // namespace
