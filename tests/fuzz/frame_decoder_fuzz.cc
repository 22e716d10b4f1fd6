// libFuzzer target for the frame decoders: decode_request on the input as
// is, then every decode_* on a copy whose opcode is rewritten to match, so
// each decoder sees every input; inflate on OP_COMPRESSED, and a check that
// what decodes is self-consistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "bson/wire.h"

namespace wire = mongoguard::wire;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

// Touches every byte a view claims to cover so the sanitizers see reads
// beyond the input.
std::uint32_t touch(const wire::DocView& d) {
  std::uint32_t sum = 0;
  for (std::uint32_t i = 0; i < d.size; ++i) sum += d.data[i];
  return sum + static_cast<std::uint32_t>(d.first_key().size());
}

void with_opcode(const std::uint8_t* data, std::size_t size, wire::OpCode op,
                 std::vector<std::uint8_t>& buf) {
  buf.assign(data, data + size);
  if (buf.size() >= 16) {
    const auto v = static_cast<std::uint32_t>(op);
    for (int i = 0; i < 4; ++i)
      buf[12 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
    // And a messageLength that matches, so decoders get past framing.
    const auto n = static_cast<std::uint32_t>(buf.size());
    for (int i = 0; i < 4; ++i)
      buf[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Limits scaled down so inflation stays cheap under the fuzzer.
  constexpr std::int32_t kLimit = 1 << 20;
  volatile std::uint32_t sink = 0;

  std::vector<std::uint8_t> scratch;
  const auto req = wire::decode_request(wire::Bytes(data, size), scratch, kLimit);
  if (req.ok()) {
    const wire::Request& r = req.view;
    check(r.header.message_length == static_cast<std::int32_t>(size));
    if (r.msg) {
      sink = sink + touch(r.msg->body);
      check(r.command == r.msg->body.first_key());
      for (int i = 0; i < r.msg->sequence_count; ++i) {
        for (const auto& d : r.msg->sequences[i].docs()) sink = sink + touch(d);
      }
    }
    if (r.query) sink = sink + touch(r.query->query);
    sink = sink + (wire::has_duplicate_fields(r) ? 1u : 0u);
  }

  std::vector<std::uint8_t> buf;
  with_opcode(data, size, wire::OpCode::kMsg, buf);
  const wire::Bytes b(buf.data(), buf.size());
  if (auto d = wire::decode_op_msg(b); d.ok()) {
    sink = sink + touch(d.view.body);
    check(d.view.sequence_count <= 2);
  }
  wire::decode_op_msg(b, /*verify_checksum=*/false);

  with_opcode(data, size, wire::OpCode::kQuery, buf);
  if (auto d = wire::decode_op_query(wire::Bytes(buf.data(), buf.size())); d.ok()) {
    sink = sink + touch(d.view.query);
    if (d.view.return_fields_selector) sink = sink + touch(*d.view.return_fields_selector);
  }
  with_opcode(data, size, wire::OpCode::kReply, buf);
  if (auto d = wire::decode_op_reply(wire::Bytes(buf.data(), buf.size())); d.ok()) {
    for (const auto& doc : d.view.docs()) sink = sink + touch(doc);
  }
  with_opcode(data, size, wire::OpCode::kInsert, buf);
  if (auto d = wire::decode_op_insert(wire::Bytes(buf.data(), buf.size())); d.ok()) {
    check(!d.view.docs().empty());
  }
  with_opcode(data, size, wire::OpCode::kUpdate, buf);
  if (auto d = wire::decode_op_update(wire::Bytes(buf.data(), buf.size())); d.ok()) {
    sink = sink + touch(d.view.selector) + touch(d.view.update);
  }
  with_opcode(data, size, wire::OpCode::kDelete, buf);
  if (auto d = wire::decode_op_delete(wire::Bytes(buf.data(), buf.size())); d.ok()) {
    sink = sink + touch(d.view.selector);
  }
  with_opcode(data, size, wire::OpCode::kGetMore, buf);
  wire::decode_op_get_more(wire::Bytes(buf.data(), buf.size()));
  with_opcode(data, size, wire::OpCode::kKillCursors, buf);
  if (auto d = wire::decode_op_kill_cursors(wire::Bytes(buf.data(), buf.size())); d.ok()) {
    check(d.view.cursor_ids.size() == static_cast<std::size_t>(d.view.number_of_cursor_ids) * 8);
  }
  with_opcode(data, size, wire::OpCode::kCompressed, buf);
  if (wire::decode_op_compressed(wire::Bytes(buf.data(), buf.size())).ok()) {
    std::vector<std::uint8_t> out;
    if (wire::inflate(wire::Bytes(buf.data(), buf.size()), out, kLimit) ==
        wire::DecodeError::kNone) {
      check(out.size() >= 16 && out.size() <= static_cast<std::size_t>(kLimit));
    }
  }

  // Any bytes are a candidate BSON document.
  if (auto d = wire::parse_document(wire::Bytes(data, size))) sink = sink + touch(*d);
  (void)sink;
  return 0;
}
