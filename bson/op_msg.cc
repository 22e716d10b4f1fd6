// OP_MSG: flags, a kind-0 body, up to two kind-1 document sequences and an
// optional CRC-32C checksum.
#include "bson/wire.h"
#include "bson/wire_internal.h"

namespace mongoguard::wire {
namespace {

constexpr std::uint8_t kKindBody = 0;
constexpr std::uint8_t kKindSequence = 1;

// A kind-1 section after its kind byte: int32 size (counting itself),
// cstring identifier, documents filling the rest of the section.
DecodeError read_sequence(detail::Reader& in, DocumentSequence& out) {
  std::int32_t size = 0;
  if (!in.read_i32(size)) return DecodeError::kTruncated;
  // The size must leave room for itself and the identifier's NUL.
  if (size < 5 || static_cast<std::size_t>(size) - 4 > in.remaining()) {
    return DecodeError::kTruncated;
  }
  detail::Reader section(in.rest().first(static_cast<std::size_t>(size) - 4));
  if (!section.read_cstring(out.identifier)) return DecodeError::kTruncated;
  out.documents = section.rest();
  const DecodeError e = detail::read_documents(out.documents, 0);
  if (e != DecodeError::kNone) return e;
  in.skip(static_cast<std::size_t>(size) - 4);
  return DecodeError::kNone;
}

}  // namespace

const DocumentSequence* OpMsgView::sequence(std::string_view identifier) const {
  for (int i = 0; i < sequence_count && i < 2; ++i) {
    if (sequences[i].identifier == identifier) return &sequences[i];
  }
  return nullptr;
}

Decoded<OpMsgView> decode_op_msg(Bytes message, bool verify_checksum) {
  Decoded<OpMsgView> result;
  OpMsgView& view = result.view;
  Header header;
  Bytes payload;
  if ((result.error = detail::check_frame(message, OpCode::kMsg, header, payload)) !=
      DecodeError::kNone) {
    return result;
  }
  detail::Reader flags_reader(payload);
  if (!flags_reader.read_u32(view.flags)) {
    result.error = DecodeError::kTruncated;
    return result;
  }
  // Bits 0-15 are "required": a receiver must refuse ones it does not know.
  if ((view.flags & 0xFFFFu) & ~kKnownLowFlags) {
    result.error = DecodeError::kUnknownFlagBits;
    return result;
  }
  Bytes sections = flags_reader.rest();
  if (view.flags & kChecksumPresent) {
    if (sections.size() < 4) {
      result.error = DecodeError::kTruncated;
      return result;
    }
    const std::size_t covered = message.size() - 4;
    view.checksum = detail::load_u32(message.data() + covered);
    sections = sections.first(sections.size() - 4);
    // Checked before parsing so corruption in transit reads as what it is.
    if (verify_checksum && crc32c(message.first(covered)) != *view.checksum) {
      result.error = DecodeError::kBadChecksum;
      return result;
    }
  }

  detail::Reader in(sections);
  bool have_body = false;
  while (!in.at_end()) {
    std::uint8_t kind = 0;
    in.read_u8(kind);
    if (kind == kKindBody) {
      if (have_body) {
        result.error = DecodeError::kDuplicateBody;
        return result;
      }
      if ((result.error = in.read_document(view.body)) != DecodeError::kNone) return result;
      have_body = true;
    } else if (kind == kKindSequence) {
      if (view.sequence_count == 2) {
        result.error = DecodeError::kTooManySequences;
        return result;
      }
      DocumentSequence& seq = view.sequences[view.sequence_count];
      if ((result.error = read_sequence(in, seq)) != DecodeError::kNone) return result;
      if (view.sequence_count == 1 && view.sequences[0].identifier == seq.identifier) {
        result.error = DecodeError::kDuplicateSequence;
        return result;
      }
      ++view.sequence_count;
    } else {
      result.error = DecodeError::kBadSectionKind;
      return result;
    }
  }
  if (!have_body) {
    result.error = DecodeError::kMissingBody;
    return result;
  }
  // The server merges sequences into the body as arrays; a field in both
  // places would leave two conflicting values for one name.
  for (int i = 0; i < view.sequence_count; ++i) {
    detail::Element element;
    if (detail::find_element(view.body, view.sequences[i].identifier, element)) {
      result.error = DecodeError::kBodyAndSequence;
      return result;
    }
  }
  return result;
}

}  // namespace mongoguard::wire
