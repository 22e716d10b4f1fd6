// The pre-OP_MSG opcodes: OP_QUERY and OP_REPLY (still used for the first
// hello), and views of the legacy CRUD opcodes older servers accept.
#include "bson/wire.h"
#include "bson/wire_internal.h"

namespace mongoguard::wire {
namespace {

// Starts a decode: frame checks, then a reader over the bytes after the
// header.
template <class View>
bool begin(Bytes message, OpCode op, Decoded<View>& result, detail::Reader& in) {
  Header header;
  Bytes body;
  result.error = detail::check_frame(message, op, header, body);
  in = detail::Reader(body);
  return result.error == DecodeError::kNone;
}

template <class View>
Decoded<View> fail(Decoded<View>& result, DecodeError e) {
  result.error = e;
  return result;
}

// Every byte of the message must have been consumed.
template <class View>
Decoded<View> finish(Decoded<View>& result, const detail::Reader& in) {
  if (!in.at_end()) result.error = DecodeError::kTrailingBytes;
  return result;
}

}  // namespace

bool OpQueryView::is_command() const { return collection() == "$cmd"; }
std::string_view OpQueryView::database() const { return detail::ns_database(full_collection_name); }
std::string_view OpQueryView::collection() const {
  return detail::ns_collection(full_collection_name);
}

Decoded<OpQueryView> decode_op_query(Bytes message) {
  Decoded<OpQueryView> r;
  detail::Reader in(Bytes{});
  if (!begin(message, OpCode::kQuery, r, in)) return r;
  auto& v = r.view;
  if (!in.read_i32(v.flags) || !in.read_cstring(v.full_collection_name) ||
      !in.read_i32(v.number_to_skip) || !in.read_i32(v.number_to_return)) {
    return fail(r, DecodeError::kTruncated);
  }
  if (auto e = in.read_document(v.query); e != DecodeError::kNone) return fail(r, e);
  if (!in.at_end()) {
    DocView fields;
    if (auto e = in.read_document(fields); e != DecodeError::kNone) return fail(r, e);
    v.return_fields_selector = fields;
  }
  return finish(r, in);
}

Decoded<OpReplyView> decode_op_reply(Bytes message) {
  Decoded<OpReplyView> r;
  detail::Reader in(Bytes{});
  if (!begin(message, OpCode::kReply, r, in)) return r;
  auto& v = r.view;
  if (!in.read_i32(v.response_flags) || !in.read_i64(v.cursor_id) ||
      !in.read_i32(v.starting_from) || !in.read_i32(v.number_returned)) {
    return fail(r, DecodeError::kTruncated);
  }
  if (v.number_returned < 0) return fail(r, DecodeError::kTruncated);
  v.documents = in.rest();
  std::size_t count = 0;
  if (auto e = detail::read_documents(v.documents, 0, &count); e != DecodeError::kNone) {
    return fail(r, e);
  }
  // numberReturned must agree with the documents actually present.
  if (count < static_cast<std::size_t>(v.number_returned)) return fail(r, DecodeError::kTruncated);
  if (count > static_cast<std::size_t>(v.number_returned)) {
    return fail(r, DecodeError::kTrailingBytes);
  }
  return r;
}

Decoded<OpInsertView> decode_op_insert(Bytes message) {
  Decoded<OpInsertView> r;
  detail::Reader in(Bytes{});
  if (!begin(message, OpCode::kInsert, r, in)) return r;
  auto& v = r.view;
  if (!in.read_i32(v.flags) || !in.read_cstring(v.full_collection_name)) {
    return fail(r, DecodeError::kTruncated);
  }
  v.documents = in.rest();
  if (auto e = detail::read_documents(v.documents, 1); e != DecodeError::kNone) return fail(r, e);
  return r;
}

Decoded<OpUpdateView> decode_op_update(Bytes message) {
  Decoded<OpUpdateView> r;
  detail::Reader in(Bytes{});
  if (!begin(message, OpCode::kUpdate, r, in)) return r;
  auto& v = r.view;
  std::int32_t zero = 0;
  if (!in.read_i32(zero) || !in.read_cstring(v.full_collection_name) || !in.read_i32(v.flags)) {
    return fail(r, DecodeError::kTruncated);
  }
  if (auto e = in.read_document(v.selector); e != DecodeError::kNone) return fail(r, e);
  if (auto e = in.read_document(v.update); e != DecodeError::kNone) return fail(r, e);
  return finish(r, in);
}

Decoded<OpDeleteView> decode_op_delete(Bytes message) {
  Decoded<OpDeleteView> r;
  detail::Reader in(Bytes{});
  if (!begin(message, OpCode::kDelete, r, in)) return r;
  auto& v = r.view;
  std::int32_t zero = 0;
  if (!in.read_i32(zero) || !in.read_cstring(v.full_collection_name) || !in.read_i32(v.flags)) {
    return fail(r, DecodeError::kTruncated);
  }
  if (auto e = in.read_document(v.selector); e != DecodeError::kNone) return fail(r, e);
  return finish(r, in);
}

Decoded<OpGetMoreView> decode_op_get_more(Bytes message) {
  Decoded<OpGetMoreView> r;
  detail::Reader in(Bytes{});
  if (!begin(message, OpCode::kGetMore, r, in)) return r;
  auto& v = r.view;
  std::int32_t zero = 0;
  if (!in.read_i32(zero) || !in.read_cstring(v.full_collection_name) ||
      !in.read_i32(v.number_to_return) || !in.read_i64(v.cursor_id)) {
    return fail(r, DecodeError::kTruncated);
  }
  return finish(r, in);
}

Decoded<OpKillCursorsView> decode_op_kill_cursors(Bytes message) {
  Decoded<OpKillCursorsView> r;
  detail::Reader in(Bytes{});
  if (!begin(message, OpCode::kKillCursors, r, in)) return r;
  auto& v = r.view;
  std::int32_t zero = 0;
  if (!in.read_i32(zero) || !in.read_i32(v.number_of_cursor_ids) || v.number_of_cursor_ids < 0) {
    return fail(r, DecodeError::kTruncated);
  }
  const std::size_t want = static_cast<std::size_t>(v.number_of_cursor_ids) * 8;
  if (in.remaining() < want) return fail(r, DecodeError::kTruncated);
  v.cursor_ids = in.rest().first(want);
  in.skip(want);
  return finish(r, in);
}

}  // namespace mongoguard::wire
