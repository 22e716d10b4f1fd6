// Message header: reading, writing and the checks made before a body is read.
#include <cstring>

#include "bson/wire.h"
#include "bson/wire_internal.h"

namespace mongoguard::wire {

bool is_known_opcode(std::int32_t op) {
  switch (static_cast<OpCode>(op)) {
    case OpCode::kReply:
    case OpCode::kUpdate:
    case OpCode::kInsert:
    case OpCode::kQuery:
    case OpCode::kGetMore:
    case OpCode::kDelete:
    case OpCode::kKillCursors:
    case OpCode::kCompressed:
    case OpCode::kMsg:
      return true;
  }
  return false;
}

const char* opcode_name(std::int32_t op) {
  switch (static_cast<OpCode>(op)) {
    case OpCode::kReply:
      return "OP_REPLY";
    case OpCode::kUpdate:
      return "OP_UPDATE";
    case OpCode::kInsert:
      return "OP_INSERT";
    case OpCode::kQuery:
      return "OP_QUERY";
    case OpCode::kGetMore:
      return "OP_GET_MORE";
    case OpCode::kDelete:
      return "OP_DELETE";
    case OpCode::kKillCursors:
      return "OP_KILL_CURSORS";
    case OpCode::kCompressed:
      return "OP_COMPRESSED";
    case OpCode::kMsg:
      return "OP_MSG";
  }
  return "unknown";
}

const char* error_name(DecodeError e) {
  switch (e) {
    case DecodeError::kNone:
      return "none";
    case DecodeError::kHttpRequest:
      return "http_request";
    case DecodeError::kTooShort:
      return "too_short";
    case DecodeError::kTooLarge:
      return "too_large";
    case DecodeError::kTruncated:
      return "truncated";
    case DecodeError::kUnknownOpcode:
      return "unknown_opcode";
    case DecodeError::kUnknownFlagBits:
      return "unknown_flag_bits";
    case DecodeError::kBadSectionKind:
      return "bad_section_kind";
    case DecodeError::kMissingBody:
      return "missing_body";
    case DecodeError::kDuplicateBody:
      return "duplicate_body";
    case DecodeError::kTooManySequences:
      return "too_many_sequences";
    case DecodeError::kDuplicateSequence:
      return "duplicate_sequence";
    case DecodeError::kBodyAndSequence:
      return "body_and_sequence";
    case DecodeError::kInvalidBson:
      return "invalid_bson";
    case DecodeError::kBadChecksum:
      return "bad_checksum";
    case DecodeError::kMissingDb:
      return "missing_db";
    case DecodeError::kEmptyCommand:
      return "empty_command";
    case DecodeError::kBadCompression:
      return "bad_compression";
    case DecodeError::kNestedCompression:
      return "nested_compression";
    case DecodeError::kTrailingBytes:
      return "trailing_bytes";
    case DecodeError::kDuplicateField:
      return "duplicate_field";
    case DecodeError::kReusedRequestId:
      return "reused_request_id";
  }
  return "unknown";
}

Header read_header(Bytes bytes) {
  const std::uint8_t* p = bytes.data();
  return Header{detail::load_i32(p), detail::load_i32(p + 4), detail::load_i32(p + 8),
                detail::load_i32(p + 12)};
}

void write_header(std::uint8_t* out, const Header& h) {
  detail::store_i32(out, h.message_length);
  detail::store_i32(out + 4, h.request_id);
  detail::store_i32(out + 8, h.response_to);
  detail::store_i32(out + 12, h.op_code);
}

namespace {

// The first four bytes of the HTTP methods a misdirected client may send.
// Each reads as a messageLength far above any size limit, so no real
// MongoDB frame can match.
bool looks_like_http(std::int32_t message_length) {
  static constexpr char kPrefixes[][5] = {"GET ", "POST", "PUT ", "HEAD",
                                          "DELE", "OPTI", "PATC", "CONN"};
  std::uint8_t word[4];
  detail::store_i32(word, message_length);
  for (const auto& prefix : kPrefixes) {
    if (std::memcmp(word, prefix, 4) == 0) return true;
  }
  return false;
}

}  // namespace

DecodeError check_header(const Header& h, std::int32_t max_size) {
  // Each prefix's bytes are all 0x20 or more, so a length below 0x20202020
  // (512 MiB, above any allowed size) cannot be one: most frames skip the
  // comparisons.
  if (static_cast<std::uint32_t>(h.message_length) >= 0x20202020u &&
      looks_like_http(h.message_length)) {
    return DecodeError::kHttpRequest;
  }
  if (h.message_length < kHeaderSize) return DecodeError::kTooShort;
  if (h.message_length > max_size) return DecodeError::kTooLarge;
  if (!is_known_opcode(h.op_code)) return DecodeError::kUnknownOpcode;
  return DecodeError::kNone;
}

namespace detail {

DecodeError check_frame(Bytes message, OpCode expected, Header& header, Bytes& body) {
  if (message.size() < static_cast<std::size_t>(kHeaderSize)) return DecodeError::kTooShort;
  header = read_header(message);
  if (header.message_length < kHeaderSize) return DecodeError::kTooShort;
  if (static_cast<std::size_t>(header.message_length) > message.size()) {
    return DecodeError::kTruncated;
  }
  if (static_cast<std::size_t>(header.message_length) < message.size()) {
    return DecodeError::kTrailingBytes;
  }
  if (header.op_code != static_cast<std::int32_t>(expected)) return DecodeError::kUnknownOpcode;
  body = message.subspan(kHeaderSize);
  return DecodeError::kNone;
}

}  // namespace detail
}  // namespace mongoguard::wire
