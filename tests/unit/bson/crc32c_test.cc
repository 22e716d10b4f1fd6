#include <gtest/gtest.h>

#include <random>
#include <string_view>
#include <vector>

#include "bson/wire.h"
#include "bson/wire_internal.h"

namespace mongoguard::wire {
namespace {

Bytes str(std::string_view s) {
  return Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

TEST(WireCrc32c, KnownVectors) {
  EXPECT_EQ(crc32c(str("")), 0u);
  EXPECT_EQ(crc32c(str("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c(str("a")), 0xC1D04330u);
  // RFC 3720 B.4: 32 bytes of zeros, of 0xFF.
  std::vector<std::uint8_t> zeros(32, 0), ones(32, 0xFF);
  EXPECT_EQ(crc32c(Bytes(zeros)), 0x8A9136AAu);
  EXPECT_EQ(crc32c(Bytes(ones)), 0x62A8AB43u);
  EXPECT_EQ(detail::crc32c_portable(str("123456789"), 0), 0xE3069283u);
}

TEST(WireCrc32c, HardwareAndPortableAgreeAtEveryLengthAndAlignment) {
  std::mt19937 rng(42);
  std::vector<std::uint8_t> data(4096 + 16);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t len : {0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 1000, 4096}) {
      const Bytes b(data.data() + offset, len);
      EXPECT_EQ(crc32c(b), detail::crc32c_portable(b, 0)) << offset << " " << len;
    }
  }
}

TEST(WireCrc32c, Chains) {
  const auto whole = crc32c(str("123456789"));
  EXPECT_EQ(crc32c(str("6789"), crc32c(str("12345"))), whole);
  EXPECT_EQ(detail::crc32c_portable(str("6789"), detail::crc32c_portable(str("12345"), 0)), whole);
}

}  // namespace
}  // namespace mongoguard::wire
