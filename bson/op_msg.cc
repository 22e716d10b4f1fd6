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

// The flag bits, and the checksum when present (checked before parsing, so
// that corruption in transit reads as what it is). `sections` is left with
// the bytes between them.
inline DecodeError read_flags(Bytes message, Bytes payload, bool verify_checksum, OpMsgView& view,
                              Bytes& sections) {
  detail::Reader flags_reader(payload);
  if (!flags_reader.read_u32(view.flags)) return DecodeError::kTruncated;
  // Bits 0-15 are "required": a receiver must refuse ones it does not know.
  if ((view.flags & 0xFFFFu) & ~kKnownLowFlags) return DecodeError::kUnknownFlagBits;
  sections = flags_reader.rest();
  if (view.flags & kChecksumPresent) {
    if (sections.size() < 4) return DecodeError::kTruncated;
    const std::size_t covered = message.size() - 4;
    view.checksum = detail::load_u32(message.data() + covered);
    sections = sections.first(sections.size() - 4);
    if (verify_checksum && crc32c(message.first(covered)) != *view.checksum) {
      return DecodeError::kBadChecksum;
    }
  }
  return DecodeError::kNone;
}

// The next kind-1 section: at most two, with different identifiers.
inline DecodeError read_next_sequence(detail::Reader& in, OpMsgView& view) {
  if (view.sequence_count == 2) return DecodeError::kTooManySequences;
  DocumentSequence& seq = view.sequences[view.sequence_count];
  if (const DecodeError e = read_sequence(in, seq); e != DecodeError::kNone) return e;
  if (view.sequence_count == 1 && view.sequences[0].identifier == seq.identifier) {
    return DecodeError::kDuplicateSequence;
  }
  ++view.sequence_count;
  return DecodeError::kNone;
}

// Exactly one kind-0 body and up to two kind-1 sequences, in any order.
inline DecodeError read_sections(Bytes sections, OpMsgView& view) {
  detail::Reader in(sections);
  bool have_body = false;
  while (!in.at_end()) {
    std::uint8_t kind = 0;
    in.read_u8(kind);
    DecodeError e = DecodeError::kNone;
    if (kind == kKindBody) {
      if (have_body) return DecodeError::kDuplicateBody;
      e = in.read_document(view.body);
      have_body = true;
    } else if (kind == kKindSequence) {
      e = read_next_sequence(in, view);
    } else {
      e = DecodeError::kBadSectionKind;
    }
    if (e != DecodeError::kNone) return e;
  }
  return have_body ? DecodeError::kNone : DecodeError::kMissingBody;
}

// The server merges sequences into the body as arrays; a field in both
// places would leave two conflicting values for one name.
inline DecodeError check_sequences_apart(const OpMsgView& view) {
  for (int i = 0; i < view.sequence_count; ++i) {
    detail::Element element;
    if (detail::find_element(view.body, view.sequences[i].identifier, element)) {
      return DecodeError::kBodyAndSequence;
    }
  }
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
  Header header;
  Bytes payload;
  Bytes sections;
  constexpr DecodeError kNone = DecodeError::kNone;
  DecodeError e = detail::check_frame(message, OpCode::kMsg, header, payload);
  if (e == kNone) e = read_flags(message, payload, verify_checksum, result.view, sections);
  if (e == kNone) e = read_sections(sections, result.view);
  if (e == kNone) e = check_sequences_apart(result.view);
  result.error = e;
  return result;
}

}  // namespace mongoguard::wire
