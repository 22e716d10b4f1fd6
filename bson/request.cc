// decode_request: what the hot path needs to know about a client message.
#include "bson/wire.h"
#include "bson/wire_internal.h"

namespace mongoguard::wire {
namespace {

constexpr std::uint8_t kBsonString = 0x02;
constexpr std::uint8_t kBsonDocument = 0x03;

void set_namespace(Request& req, std::string_view ns) {
  req.database = detail::ns_database(ns);
  req.collection = detail::ns_collection(ns);
}

DecodeError decode_msg(Bytes message, Request& req) {
  auto d = decode_op_msg(message);
  if (!d.ok()) return d.error;
  const OpMsgView& msg = d.view;
  req.command = msg.body.first_key();
  req.body = msg.body;
  if (req.command.empty()) return DecodeError::kEmptyCommand;
  // One walk over the body: repeated fields, and $db.
  detail::Element db;
  bool have_db = false;
  if (detail::duplicate_keys_finding(msg.body, "$db", db, have_db)) {
    return DecodeError::kDuplicateField;
  }
  if (!have_db || db.type != kBsonString) return DecodeError::kMissingDb;
  // int32 length (counting the NUL), bytes, NUL.
  req.database = std::string_view(reinterpret_cast<const char*>(db.value + 4), db.value_size - 5);
  req.more_to_come = msg.more_to_come();
  req.exhaust_allowed = msg.exhaust_allowed();
  req.msg = msg;
  return DecodeError::kNone;
}

DecodeError decode_query(Bytes message, Request& req) {
  auto d = decode_op_query(message);
  if (!d.ok()) return d.error;
  const OpQueryView& q = d.view;
  req.query = q;
  if (!q.is_command()) {
    set_namespace(req, q.full_collection_name);
    return DecodeError::kNone;
  }
  req.database = q.database();
  DocView cmd = q.query;
  const std::string_view first = cmd.first_key();
  // Old drivers wrap the command to attach read preference:
  // {$query: {isMaster: 1}, $readPreference: {...}}. The server unwraps a
  // first key of "$query" or "query" and refuses it if it is not a document.
  if (first == "$query" || first == "query") {
    detail::Element inner;
    detail::ElementCursor cursor(cmd);
    cursor.next(inner);
    if (inner.type != kBsonDocument) return DecodeError::kEmptyCommand;
    cmd = DocView{inner.value, inner.value_size};
  }
  req.command = cmd.first_key();
  if (req.command.empty()) return DecodeError::kEmptyCommand;
  if (has_duplicate_keys(cmd)) return DecodeError::kDuplicateField;
  req.body = cmd;
  return DecodeError::kNone;
}

template <class View>
DecodeError decode_legacy(Decoded<View> d, Request& req) {
  if (!d.ok()) return d.error;
  set_namespace(req, d.view.full_collection_name);
  return DecodeError::kNone;
}

DecodeError decode_plain(Bytes message, Request& req) {
  switch (static_cast<OpCode>(req.effective_opcode)) {
    case OpCode::kMsg:
      return decode_msg(message, req);
    case OpCode::kQuery:
      return decode_query(message, req);
    case OpCode::kInsert:
      req.more_to_come = true;  // legacy writes are never answered
      return decode_legacy(decode_op_insert(message), req);
    case OpCode::kUpdate:
      req.more_to_come = true;
      return decode_legacy(decode_op_update(message), req);
    case OpCode::kDelete:
      req.more_to_come = true;
      return decode_legacy(decode_op_delete(message), req);
    case OpCode::kGetMore:
      return decode_legacy(decode_op_get_more(message), req);
    case OpCode::kKillCursors: {
      auto d = decode_op_kill_cursors(message);
      return d.error;
    }
    case OpCode::kReply:       // a server's message: no client sends it
    case OpCode::kCompressed:  // handled by the caller; never nested
      break;
  }
  return DecodeError::kUnknownOpcode;
}

}  // namespace

bool has_duplicate_fields(const Request& request) {
  if (request.body && has_duplicate_keys(*request.body, /*deep=*/true)) return true;
  if (request.msg) {
    for (int i = 0; i < request.msg->sequence_count; ++i) {
      for (const auto& d : request.msg->sequences[i].docs()) {
        if (has_duplicate_keys(d, /*deep=*/true)) return true;
      }
    }
  }
  return false;
}

Decoded<Request> decode_request(Bytes message, std::vector<std::uint8_t>& scratch,
                                std::int32_t max_size) {
  Decoded<Request> result;
  Request& req = result.view;
  if (message.size() >= 4) {
    // An HTTP client may send fewer than 16 bytes before waiting.
    req.header.message_length = detail::load_i32(message.data());
    if (check_header(Header{req.header.message_length, 0, 0, 0}) == DecodeError::kHttpRequest) {
      result.error = DecodeError::kHttpRequest;
      return result;
    }
  }
  if (message.size() < static_cast<std::size_t>(kHeaderSize)) {
    result.error = DecodeError::kTooShort;
    return result;
  }
  req.header = read_header(message);
  if ((result.error = check_header(req.header, max_size)) != DecodeError::kNone) return result;
  req.effective_opcode = req.header.op_code;
  if (req.header.op_code != static_cast<std::int32_t>(OpCode::kCompressed)) {
    result.error = decode_plain(message, req);
    return result;
  }
  if ((result.error = inflate(message, scratch, max_size)) != DecodeError::kNone) return result;
  req.compressed = true;
  req.effective_opcode = read_header(scratch).op_code;
  result.error = decode_plain(scratch, req);
  return result;
}

}  // namespace mongoguard::wire
