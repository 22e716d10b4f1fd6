// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the OP_MSG checksum.
//
// No Debian library ships a plain CRC-32C for C++, so it is written here:
// slicing-by-8 tables (about 1-2 GB/s) and, on x86-64 CPUs with SSE 4.2,
// the crc32 instruction (several GB/s), chosen once at startup. Messages
// reach 48 MB, so the speed matters.
#include <array>
#include <cstring>

#include "bson/wire.h"
#include "bson/wire_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define MG_CRC32C_HW 1
#endif

namespace mongoguard::wire {
namespace {

using Table = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Table make_table() {
  Table t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i) {
    for (std::size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
  return t;
}

constexpr Table kTable = make_table();

// `crc` here is the running (already inverted) register value.
std::uint32_t update_portable(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  while (n >= 8) {
    const std::uint32_t lo = detail::load_u32(p) ^ crc;
    const std::uint32_t hi = detail::load_u32(p + 4);
    crc = kTable[7][lo & 0xFF] ^ kTable[6][(lo >> 8) & 0xFF] ^ kTable[5][(lo >> 16) & 0xFF] ^
          kTable[4][lo >> 24] ^ kTable[3][hi & 0xFF] ^ kTable[2][(hi >> 8) & 0xFF] ^
          kTable[1][(hi >> 16) & 0xFF] ^ kTable[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ kTable[0][(crc ^ *p++) & 0xFF];
  return crc;
}

#ifdef MG_CRC32C_HW
__attribute__((target("sse4.2"))) std::uint32_t update_sse42(std::uint32_t crc,
                                                             const std::uint8_t* p, std::size_t n) {
  std::uint64_t c = crc;
  while (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);  // x86-64 is little endian, as the wire is
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

using UpdateFn = std::uint32_t (*)(std::uint32_t, const std::uint8_t*, std::size_t);

UpdateFn pick_update() {
  __builtin_cpu_init();  // may run before the CPU model's own constructor
  return __builtin_cpu_supports("sse4.2") ? update_sse42 : update_portable;
}
#endif

}  // namespace

std::uint32_t crc32c(Bytes data, std::uint32_t crc) {
#ifdef MG_CRC32C_HW
  static const UpdateFn update = pick_update();
  return ~update(~crc, data.data(), data.size());
#else
  return ~update_portable(~crc, data.data(), data.size());
#endif
}

namespace detail {
std::uint32_t crc32c_portable(Bytes data, std::uint32_t crc) {
  return ~update_portable(~crc, data.data(), data.size());
}
}  // namespace detail

}  // namespace mongoguard::wire
