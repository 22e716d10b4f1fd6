#include "proxy/topology.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace mongoguard::proxy {

namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_host_list(const char* key) {
  return std::strcmp(key, "hosts") == 0 || std::strcmp(key, "passives") == 0 ||
         std::strcmp(key, "arbiters") == 0;
}

bool is_host_field(const char* key) {
  return std::strcmp(key, "primary") == 0 || std::strcmp(key, "me") == 0;
}

// Copies `body` into `out` with member addresses mapped. Returns whether any
// field named a member (so whether the copy differs in meaning).
bool rewrite_body(const bson_t* body, const TopologyMap& topology, bson_t* out,
                  std::vector<std::string>& dropped) {
  bool touched = false;
  bson_iter_t it;
  if (!bson_iter_init(&it, body)) return false;
  while (bson_iter_next(&it)) {
    const char* key = bson_iter_key(&it);
    if (is_host_list(key) && BSON_ITER_HOLDS_ARRAY(&it)) {
      touched = true;
      bson_t array;
      bson_append_array_begin(out, key, -1, &array);
      bson_iter_t member;
      int index = 0;
      if (bson_iter_recurse(&it, &member)) {
        while (bson_iter_next(&member)) {
          if (!BSON_ITER_HOLDS_UTF8(&member)) continue;
          const char* server = bson_iter_utf8(&member, nullptr);
          if (auto mapped = topology.map(server)) {
            const std::string index_key = std::to_string(index++);
            bson_append_utf8(&array, index_key.c_str(), -1, mapped->c_str(), -1);
          } else {
            dropped.emplace_back(server);
          }
        }
      }
      bson_append_array_end(out, &array);
    } else if (is_host_field(key) && BSON_ITER_HOLDS_UTF8(&it)) {
      touched = true;
      const char* server = bson_iter_utf8(&it, nullptr);
      if (auto mapped = topology.map(server)) {
        bson_append_utf8(out, key, -1, mapped->c_str(), -1);
      } else {
        dropped.emplace_back(server);
      }
    } else {
      bson_append_iter(out, key, -1, &it);
    }
  }
  return touched;
}

}  // namespace

void TopologyMap::add(std::string server, std::string listen) {
  listen_for[lowercase(server)] = std::move(listen);
}

std::optional<std::string> TopologyMap::map(std::string_view server) const {
  auto it = listen_for.find(lowercase(server));
  if (it == listen_for.end()) return std::nullopt;
  return it->second;
}

std::optional<std::vector<std::uint8_t>> rewrite_hello_reply(wire::Bytes message,
                                                             const TopologyMap& topology,
                                                             std::vector<std::string>& dropped) {
  if (message.size() < static_cast<std::size_t>(wire::kHeaderSize)) return std::nullopt;
  const auto header = wire::read_header(message);
  std::vector<std::uint8_t> inflated;
  wire::Bytes plain = message;
  if (header.op_code == static_cast<std::int32_t>(wire::OpCode::kCompressed)) {
    if (wire::inflate(message, inflated) != wire::DecodeError::kNone) return std::nullopt;
    plain = inflated;
  }
  const auto opcode = wire::read_header(plain).op_code;
  bson_t out = BSON_INITIALIZER;
  std::optional<std::vector<std::uint8_t>> result;
  if (opcode == static_cast<std::int32_t>(wire::OpCode::kMsg)) {
    auto msg = wire::decode_op_msg(plain, false);
    bson_t body;
    if (msg.ok() && msg.view.body.as_bson(&body) && rewrite_body(&body, topology, &out, dropped)) {
      result = wire::build_op_msg(&out, header.request_id, header.response_to,
                                  msg.view.flags & ~wire::kChecksumPresent);
    }
  } else if (opcode == static_cast<std::int32_t>(wire::OpCode::kReply)) {
    auto reply = wire::decode_op_reply(plain);
    if (reply.ok() && reply.view.number_returned == 1) {
      auto docs = reply.view.docs();
      bson_t body;
      if (!docs.empty() && docs.front().as_bson(&body) &&
          rewrite_body(&body, topology, &out, dropped)) {
        auto built = wire::build_op_reply(&out, header.request_id, header.response_to);
        // Keep the server's responseFlags (e.g. AwaitCapable).
        const auto flags = static_cast<std::uint32_t>(reply.view.response_flags);
        for (int i = 0; i < 4; ++i) built[16 + i] = static_cast<std::uint8_t>(flags >> (8 * i));
        result = std::move(built);
      }
    }
  }
  bson_destroy(&out);
  return result;
}

}  // namespace mongoguard::proxy
