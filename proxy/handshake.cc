#include "proxy/handshake.h"

#include <cstring>

namespace mongoguard::proxy {

namespace {

void store_i32(std::vector<std::uint8_t>& out, std::size_t at, std::int32_t value) {
  const auto u = static_cast<std::uint32_t>(value);
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(u >> (8 * i));
}

void append_i32(std::vector<std::uint8_t>& out, std::int32_t value) {
  out.resize(out.size() + 4);
  store_i32(out, out.size() - 4, value);
}

void append_doc(std::vector<std::uint8_t>& out, const bson_t* doc) {
  const std::uint8_t* data = bson_get_data(doc);
  out.insert(out.end(), data, data + doc->len);
}

// Copies `body` with unknown names taken out of `compression`. False when
// there was nothing to take out.
bool trim(const bson_t* body, bson_t* out, std::vector<std::string>& removed) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, body, "compression") || !BSON_ITER_HOLDS_ARRAY(&it)) return false;
  bson_iter_t name;
  bool unknown = false;
  if (bson_iter_recurse(&it, &name)) {
    while (bson_iter_next(&name)) {
      if (!BSON_ITER_HOLDS_UTF8(&name) || !can_inflate(bson_iter_utf8(&name, nullptr))) {
        unknown = true;
      }
    }
  }
  if (!unknown) return false;
  if (!bson_iter_init(&it, body)) return false;
  while (bson_iter_next(&it)) {
    const char* key = bson_iter_key(&it);
    if (std::strcmp(key, "compression") != 0 || !BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_append_iter(out, key, -1, &it);
      continue;
    }
    bson_t kept;
    bson_append_array_begin(out, key, -1, &kept);
    int index = 0;
    if (bson_iter_recurse(&it, &name)) {
      while (bson_iter_next(&name)) {
        if (BSON_ITER_HOLDS_UTF8(&name) && can_inflate(bson_iter_utf8(&name, nullptr))) {
          const std::string index_key = std::to_string(index++);
          bson_append_utf8(&kept, index_key.c_str(), -1, bson_iter_utf8(&name, nullptr), -1);
        } else {
          removed.emplace_back(BSON_ITER_HOLDS_UTF8(&name) ? bson_iter_utf8(&name, nullptr)
                                                           : "(not a string)");
        }
      }
    }
    bson_append_array_end(out, &kept);
  }
  return true;
}

}  // namespace

bool can_inflate(std::string_view compressor) {
  return compressor == "snappy" || compressor == "zlib" || compressor == "zstd" ||
         compressor == "noop";
}

std::optional<std::vector<std::uint8_t>> trim_hello_compressors(const wire::Request& request,
                                                                std::vector<std::string>& removed) {
  // The handshake is never compressed; anything else is left alone.
  if (request.compressed) return std::nullopt;
  bson_t out = BSON_INITIALIZER;
  std::optional<std::vector<std::uint8_t>> result;
  if (request.msg && request.msg->sequence_count == 0) {
    bson_t body;
    if (request.msg->body.as_bson(&body) && trim(&body, &out, removed)) {
      result = wire::build_op_msg(&out, request.header.request_id, request.header.response_to,
                                  request.msg->flags & ~wire::kChecksumPresent);
    }
  } else if (request.query) {
    const auto& q = *request.query;
    bson_t query;
    // The wrapped {$query: {...}} form is rare in handshakes; left as sent.
    const auto first = q.query.first_key();
    if (first != "$query" && first != "query" && q.query.as_bson(&query) &&
        trim(&query, &out, removed)) {
      std::vector<std::uint8_t> built(wire::kHeaderSize);
      append_i32(built, q.flags);
      built.insert(built.end(), q.full_collection_name.begin(), q.full_collection_name.end());
      built.push_back(0);
      append_i32(built, q.number_to_skip);
      append_i32(built, q.number_to_return);
      append_doc(built, &out);
      if (q.return_fields_selector) {
        built.insert(built.end(), q.return_fields_selector->data,
                     q.return_fields_selector->data + q.return_fields_selector->size);
      }
      wire::Header header = request.header;
      header.message_length = static_cast<std::int32_t>(built.size());
      header.op_code = static_cast<std::int32_t>(wire::OpCode::kQuery);
      wire::write_header(built.data(), header);
      result = std::move(built);
    }
  }
  bson_destroy(&out);
  return result;
}

}  // namespace mongoguard::proxy
