// Builders for hand-made wire messages used by the wire_*_test.cc files.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bson/wire.h"

namespace mongoguard::wire::testing {

using Buf = std::vector<std::uint8_t>;

inline Bytes bytes(const Buf& b) { return Bytes(b.data(), b.size()); }

// The bytes of a document written as relaxed extended JSON.
inline Buf doc(std::string_view json) {
  bson_error_t error;
  bson_t* b = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json.data()),
                                 static_cast<ssize_t>(json.size()), &error);
  if (b == nullptr) throw std::runtime_error(std::string("bad test JSON: ") + error.message);
  Buf out(bson_get_data(b), bson_get_data(b) + b->len);
  bson_destroy(b);
  return out;
}

inline void put_u8(Buf& b, std::uint8_t v) { b.push_back(v); }
inline void put_u32(Buf& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_i32(Buf& b, std::int32_t v) { put_u32(b, static_cast<std::uint32_t>(v)); }
inline void put_i64(Buf& b, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  put_u32(b, static_cast<std::uint32_t>(u));
  put_u32(b, static_cast<std::uint32_t>(u >> 32));
}
// resize + memcpy rather than insert(): GCC 12 at -O2 reports a bogus
// -Wstringop-overflow for vector<uint8_t>::insert into an empty vector.
inline void put_raw(Buf& b, const void* p, std::size_t n) {
  const std::size_t old = b.size();
  b.resize(old + n);
  if (n > 0) std::memcpy(b.data() + old, p, n);
}
inline void put_cstr(Buf& b, std::string_view s) {
  put_raw(b, s.data(), s.size());
  b.push_back(0);
}
inline void put(Buf& b, const Buf& more) { put_raw(b, more.data(), more.size()); }

// header + payload, messageLength filled in.
inline Buf frame(std::int32_t op_code, const Buf& payload, std::int32_t request_id = 7,
                 std::int32_t response_to = 0) {
  Buf out;
  put_i32(out, static_cast<std::int32_t>(16 + payload.size()));
  put_i32(out, request_id);
  put_i32(out, response_to);
  put_i32(out, op_code);
  put(out, payload);
  return out;
}
inline Buf frame(OpCode op, const Buf& payload, std::int32_t request_id = 7,
                 std::int32_t response_to = 0) {
  return frame(static_cast<std::int32_t>(op), payload, request_id, response_to);
}

// OP_MSG sections, in the order added.
class MsgBuilder {
 public:
  explicit MsgBuilder(std::uint32_t flags = 0) : flags_(flags) {}

  MsgBuilder& body(std::string_view json) { return body_bytes(doc(json)); }
  MsgBuilder& body_bytes(const Buf& d) {
    put_u8(sections_, 0);
    put(sections_, d);
    return *this;
  }
  MsgBuilder& sequence(std::string_view id, std::initializer_list<std::string_view> docs) {
    Buf payload;
    put_cstr(payload, id);
    for (auto json : docs) put(payload, doc(json));
    return sequence_bytes(payload);
  }
  // A kind-1 section whose payload (identifier + documents) is given raw.
  MsgBuilder& sequence_bytes(const Buf& payload) {
    put_u8(sections_, 1);
    put_i32(sections_, static_cast<std::int32_t>(4 + payload.size()));
    put(sections_, payload);
    return *this;
  }
  MsgBuilder& raw(const Buf& bytes_) {
    put(sections_, bytes_);
    return *this;
  }

  // With kChecksumPresent in the flags a correct CRC-32C is appended, then
  // XORed with `corrupt_checksum`.
  Buf build(std::int32_t request_id = 7, std::uint32_t corrupt_checksum = 0) const {
    Buf payload;
    put_u32(payload, flags_);
    put(payload, sections_);
    const bool checksum = flags_ & kChecksumPresent;
    if (checksum) payload.resize(payload.size() + 4);
    Buf out = frame(OpCode::kMsg, payload, request_id);
    if (checksum) {
      const std::size_t covered = out.size() - 4;
      const std::uint32_t crc = crc32c(Bytes(out.data(), covered)) ^ corrupt_checksum;
      for (int i = 0; i < 4; ++i) out[covered + i] = static_cast<std::uint8_t>(crc >> (8 * i));
    }
    return out;
  }

 private:
  std::uint32_t flags_;
  Buf sections_;
};

// OP_QUERY on `ns` with a query document and optional projection.
inline Buf op_query(std::string_view ns, const Buf& query, const Buf* fields = nullptr,
                    std::int32_t flags = 0) {
  Buf p;
  put_i32(p, flags);
  put_cstr(p, ns);
  put_i32(p, 0);
  put_i32(p, -1);
  put(p, query);
  if (fields != nullptr) put(p, *fields);
  return frame(OpCode::kQuery, p);
}

// An OP_COMPRESSED frame assembled by hand (to lie about its fields).
inline Buf op_compressed_raw(std::int32_t original_opcode, std::int32_t uncompressed_size,
                             std::uint8_t compressor, const Buf& data) {
  Buf p;
  put_i32(p, original_opcode);
  put_i32(p, uncompressed_size);
  put_u8(p, compressor);
  put(p, data);
  return frame(OpCode::kCompressed, p);
}

// Parses the single-body OP_MSG at `message` and returns its body as JSON.
inline std::string body_json(const Buf& message) {
  const auto d = decode_op_msg(bytes(message));
  return d.ok() ? d.view.body.to_json() : std::string("<") + error_name(d.error) + ">";
}

}  // namespace mongoguard::wire::testing
