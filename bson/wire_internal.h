// Helpers shared by the decoders in bson/*.cc. Not part of the contract in
// wire.h; nothing outside bson/ and its unit tests should include this.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "bson/wire.h"

namespace mongoguard::wire::detail {

// Nesting limit for BSON validation. The server refuses documents nested
// deeper than 200 levels; the margin keeps every document it accepts valid
// here, while the bound keeps the walk (and anything that later recurses
// over a validated document) far from exhausting a stack.
inline constexpr int kMaxBsonDepth = 256;

// Little-endian loads written byte by byte: compilers turn them into single
// loads, and they are correct on any host and any alignment.
inline std::uint32_t load_u32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}
inline std::int32_t load_i32(const std::uint8_t* p) {
  return static_cast<std::int32_t>(load_u32(p));
}
inline std::uint64_t load_u64(const std::uint8_t* p) {
  return std::uint64_t{load_u32(p)} | std::uint64_t{load_u32(p + 4)} << 32;
}
inline std::int64_t load_i64(const std::uint8_t* p) {
  return static_cast<std::int64_t>(load_u64(p));
}

// The first NUL in [p, end), or nullptr. Keys are short: one or two 8-byte
// words usually hold the NUL, found by the bit trick below in fewer
// instructions than a call to memchr takes; longer runs go to memchr. The
// lowest flagged byte of the mask is always a real NUL (a false flag needs
// a borrow from a lower zero byte), and the word is read little-endian, so
// its trailing zero bits count the bytes before that NUL.
inline const std::uint8_t* find_nul(const std::uint8_t* p, const std::uint8_t* end) {
  for (int words = 0; words < 2 && end - p >= 8; ++words, p += 8) {
    const std::uint64_t w = load_u64(p);
    const std::uint64_t zero = (w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull;
    if (zero != 0) return p + (std::countr_zero(zero) >> 3);
  }
  return static_cast<const std::uint8_t*>(std::memchr(p, 0, static_cast<std::size_t>(end - p)));
}
inline void store_u32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
  p[2] = static_cast<std::uint8_t>(v >> 16);
  p[3] = static_cast<std::uint8_t>(v >> 24);
}
inline void store_i32(std::uint8_t* p, std::int32_t v) {
  store_u32(p, static_cast<std::uint32_t>(v));
}
inline void store_i64(std::uint8_t* p, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  store_u32(p, static_cast<std::uint32_t>(u));
  store_u32(p + 4, static_cast<std::uint32_t>(u >> 32));
}

// Validates one BSON document of exactly `size` bytes at `data`: length
// prefix, terminators, every element's type and extent, nested documents,
// arrays and code-with-scope, nesting depth. UTF-8 is not checked (the
// server does that where it matters). Iterative: no recursion, no
// allocation. libbson's bson_validate() is not used because in 1.23 it
// recurses once per nesting level (a crafted 700 KB document overflows the
// stack) and stops walking, while still reporting success, at the first
// string that is not valid UTF-8.
bool validate_bson(const std::uint8_t* data, std::uint32_t size);

// Reads a document at the front of `bytes` (which may extend beyond it):
// kTruncated when its length prefix points past the end of `bytes`,
// kInvalidBson when the document itself is malformed.
DecodeError read_document(Bytes bytes, DocView& out);

// One element of an already validated document.
struct Element {
  std::uint8_t type = 0;
  std::string_view key;
  const std::uint8_t* value = nullptr;
  std::uint32_t value_size = 0;
};

// Size of a value of type `type` at `p` in a validated document (no checks).
inline std::uint32_t validated_value_size(std::uint8_t type, const std::uint8_t* p) {
  switch (type) {
    case 0x01:  // double
    case 0x09:  // UTC datetime
    case 0x11:  // timestamp
    case 0x12:  // int64
      return 8;
    case 0x10:  // int32
      return 4;
    case 0x13:  // decimal128
      return 16;
    case 0x07:  // ObjectId
      return 12;
    case 0x08:  // bool
      return 1;
    case 0x02:  // string
    case 0x0D:  // JavaScript code
    case 0x0E:  // symbol
      return 4 + load_u32(p);
    case 0x03:  // document
    case 0x04:  // array
    case 0x0F:  // code with scope
      return load_u32(p);
    case 0x05:  // binary: length, subtype, bytes
      return 5 + load_u32(p);
    case 0x0B: {  // regex: two C strings
      const auto a = std::strlen(reinterpret_cast<const char*>(p)) + 1;
      const auto b = std::strlen(reinterpret_cast<const char*>(p + a)) + 1;
      return static_cast<std::uint32_t>(a + b);
    }
    case 0x0C:  // DBPointer: string, ObjectId
      return 4 + load_u32(p) + 12;
    default:  // undefined, null, minKey, maxKey
      return 0;
  }
}

// Walks the top-level elements of a validated document. Inline: every
// relayed request walks its body's keys once.
class ElementCursor {
 public:
  explicit ElementCursor(const DocView& doc)
      : pos_(doc.data ? doc.data + 4 : nullptr),
        end_(doc.data ? doc.data + doc.size - 1 : nullptr) {}
  bool next(Element& out) {
    if (pos_ == nullptr || pos_ >= end_) return false;
    out.type = *pos_++;
    const auto* key = reinterpret_cast<const char*>(pos_);
    // Validated: the key's NUL comes before the document's own.
    const auto key_len = static_cast<std::size_t>(find_nul(pos_, end_ + 1) - pos_);
    out.key = std::string_view(key, key_len);
    pos_ += key_len + 1;
    out.value = pos_;
    out.value_size = validated_value_size(out.type, pos_);
    pos_ += out.value_size;
    return true;
  }

 private:
  const std::uint8_t* pos_;
  const std::uint8_t* end_;
};

// Finds a top-level key (case-sensitive) in a validated document.
bool find_element(const DocView& doc, std::string_view key, Element& out);

// has_duplicate_keys(doc) and find_element(doc, key) in one walk: true when
// a top-level key repeats; else `have` says whether `key` was found.
bool duplicate_keys_finding(const DocView& doc, std::string_view key, Element& found, bool& have);

// has_duplicate_keys(); `compare` false walks an array's elements without
// comparing its index keys.
bool duplicate_keys(const DocView& doc, bool deep, bool compare);

// Sequential reader over message bytes. Every read checks bounds and, on
// failure, leaves the reader unchanged.
class Reader {
 public:
  explicit Reader(Bytes bytes) : bytes_(bytes) {}

  std::size_t remaining() const { return bytes_.size() - pos_; }
  std::size_t offset() const { return pos_; }
  bool at_end() const { return pos_ == bytes_.size(); }
  Bytes rest() const { return bytes_.subspan(pos_); }

  bool read_u8(std::uint8_t& v) {
    if (remaining() < 1) return false;
    v = bytes_[pos_++];
    return true;
  }
  bool read_i32(std::int32_t& v) {
    if (remaining() < 4) return false;
    v = load_i32(bytes_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool read_u32(std::uint32_t& v) {
    if (remaining() < 4) return false;
    v = load_u32(bytes_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool read_i64(std::int64_t& v) {
    if (remaining() < 8) return false;
    v = load_i64(bytes_.data() + pos_);
    pos_ += 8;
    return true;
  }
  // A NUL-terminated string; the view excludes the NUL.
  bool read_cstring(std::string_view& v) {
    const auto* start = bytes_.data() + pos_;
    const auto* nul = find_nul(start, start + remaining());
    if (nul == nullptr) return false;
    v = std::string_view(reinterpret_cast<const char*>(start),
                         static_cast<std::size_t>(nul - start));
    pos_ += v.size() + 1;
    return true;
  }
  DecodeError read_document(DocView& out) {
    const DecodeError e = detail::read_document(rest(), out);
    if (e == DecodeError::kNone) pos_ += out.size;
    return e;
  }
  bool skip(std::size_t n) {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }

 private:
  Bytes bytes_;
  std::size_t pos_ = 0;
};

// Common checks every decode_op_* makes on a whole message: at least a
// header, messageLength equal to the bytes given, the expected opcode. On
// success `body` is everything after the header.
DecodeError check_frame(Bytes message, OpCode expected, Header& header, Bytes& body);

// Reads documents back to back until the end of `bytes`; at least
// `min_count` of them.
DecodeError read_documents(Bytes bytes, std::size_t min_count, std::size_t* count = nullptr);

// Walks concatenated, already validated documents.
std::vector<DocView> split_documents(Bytes documents);

// "db.coll" → "db" and "coll"; a name without a dot is all database.
inline std::string_view ns_database(std::string_view ns) { return ns.substr(0, ns.find('.')); }
inline std::string_view ns_collection(std::string_view ns) {
  const auto dot = ns.find('.');
  return dot == std::string_view::npos ? std::string_view{} : ns.substr(dot + 1);
}

// Portable CRC-32C, for tests comparing it with the hardware path.
std::uint32_t crc32c_portable(Bytes data, std::uint32_t crc);

}  // namespace mongoguard::wire::detail
