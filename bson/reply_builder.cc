// Messages the proxy writes itself: OP_MSG replies (errors for blocked
// operations) and OP_REPLY answers to OP_QUERY.
#include <cstring>

#include "bson/wire.h"
#include "bson/wire_internal.h"

namespace mongoguard::wire {

std::vector<std::uint8_t> build_op_msg(const bson_t* body, std::int32_t request_id,
                                       std::int32_t response_to, std::uint32_t flags) {
  const bool checksum = flags & kChecksumPresent;
  const std::size_t size = kHeaderSize + 4 + 1 + body->len + (checksum ? 4 : 0);
  std::vector<std::uint8_t> out(size);
  write_header(out.data(), Header{static_cast<std::int32_t>(size), request_id, response_to,
                                  static_cast<std::int32_t>(OpCode::kMsg)});
  std::uint8_t* p = out.data() + kHeaderSize;
  detail::store_u32(p, flags);
  p[4] = 0;  // kind 0: the body
  std::memcpy(p + 5, bson_get_data(body), body->len);
  if (checksum) {
    const std::size_t covered = size - 4;
    detail::store_u32(out.data() + covered, crc32c(Bytes(out.data(), covered)));
  }
  return out;
}

std::vector<std::uint8_t> build_error_reply(std::int32_t request_id, std::int32_t response_to,
                                            std::int32_t code, std::string_view code_name,
                                            std::string_view errmsg) {
  // Field order and types as the server writes them. Drivers decide whether
  // to retry from errorLabels and a list of codes; a refusal carries no
  // labels so that it is final.
  bson_t body;
  bson_init(&body);
  BSON_APPEND_DOUBLE(&body, "ok", 0.0);
  bson_append_utf8(&body, "errmsg", -1, errmsg.data(), static_cast<int>(errmsg.size()));
  BSON_APPEND_INT32(&body, "code", code);
  bson_append_utf8(&body, "codeName", -1, code_name.data(), static_cast<int>(code_name.size()));
  auto out = build_op_msg(&body, request_id, response_to);
  bson_destroy(&body);
  return out;
}

std::vector<std::uint8_t> build_op_reply(const bson_t* doc, std::int32_t request_id,
                                         std::int32_t response_to) {
  // responseFlags, cursorID, startingFrom, numberReturned.
  constexpr std::size_t kPrefix = 4 + 8 + 4 + 4;
  const std::size_t size = kHeaderSize + kPrefix + doc->len;
  std::vector<std::uint8_t> out(size);
  write_header(out.data(), Header{static_cast<std::int32_t>(size), request_id, response_to,
                                  static_cast<std::int32_t>(OpCode::kReply)});
  std::uint8_t* p = out.data() + kHeaderSize;
  detail::store_i32(p, 0);
  detail::store_i64(p + 4, 0);
  detail::store_i32(p + 12, 0);
  detail::store_i32(p + 16, 1);
  std::memcpy(p + kPrefix, bson_get_data(doc), doc->len);
  return out;
}

}  // namespace mongoguard::wire
