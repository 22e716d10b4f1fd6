// Wire-protocol framing and zero-copy views of MongoDB messages.
//
// Everything here works on bytes the caller owns; views point into them and
// are valid only while those bytes live. No I/O, no allocation on the hot
// path except where a compressed message must be inflated for inspection
// (the inflated bytes then live in a caller-provided buffer).
#pragma once

#include <bson/bson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mongoguard::wire {

using Bytes = std::span<const std::uint8_t>;

inline constexpr std::int32_t kHeaderSize = 16;
// The server's maxMessageSizeBytes.
inline constexpr std::int32_t kMaxMessageSize = 48'000'000;
// Largest BSON document the server accepts inside a message (16 MiB plus the
// server's 16 KiB slack for command overhead).
inline constexpr std::int32_t kMaxBsonObjectSize = 16 * 1024 * 1024 + 16 * 1024;

enum class OpCode : std::int32_t {
  kReply = 1,
  kUpdate = 2001,
  kInsert = 2002,
  kQuery = 2004,
  kGetMore = 2005,
  kDelete = 2006,
  kKillCursors = 2007,
  kCompressed = 2012,
  kMsg = 2013,
};

bool is_known_opcode(std::int32_t op);
const char* opcode_name(std::int32_t op);  // "OP_MSG", ... or "unknown"

// OP_MSG flag bits.
inline constexpr std::uint32_t kChecksumPresent = 1u << 0;
inline constexpr std::uint32_t kMoreToCome = 1u << 1;
inline constexpr std::uint32_t kExhaustAllowed = 1u << 16;
// Low 16 bits the protocol defines; any other low bit must be rejected.
inline constexpr std::uint32_t kKnownLowFlags = kChecksumPresent | kMoreToCome;

enum class CompressorId : std::uint8_t { kNoop = 0, kSnappy = 1, kZlib = 2, kZstd = 3 };

// Why a frame could not be decoded. Each value has a stable snake_case name
// (used in logs and metrics labels) from error_name().
enum class DecodeError {
  kNone = 0,
  kHttpRequest,  // the first bytes are "GET " / "POST" / ...: an HTTP client
  kTooShort,     // messageLength < 16
  kTooLarge,     // messageLength > limit
  kTruncated,    // a length inside the message points past its end
  kUnknownOpcode,
  kUnknownFlagBits,    // OP_MSG low flag bits other than checksum/moreToCome
  kBadSectionKind,     // OP_MSG section kind other than 0 or 1
  kMissingBody,        // OP_MSG without a kind-0 section
  kDuplicateBody,      // more than one kind-0 section
  kTooManySequences,   // more than two kind-1 sections
  kDuplicateSequence,  // two kind-1 sections with the same identifier
  kBodyAndSequence,    // a field present both in the body and as a sequence
  kInvalidBson,
  kBadChecksum,
  kMissingDb,          // OP_MSG body without a string $db
  kEmptyCommand,       // body has no first key
  kBadCompression,     // unknown compressor, inflate failed, size mismatch
  kNestedCompression,  // OP_COMPRESSED wrapping OP_COMPRESSED
  kTrailingBytes,      // bytes left over after the last expected field
  kDuplicateField,     // a command names one field twice (servers differ on which copy counts)
  kReusedRequestId,    // a request reuses the id of one still in flight on its connection
};

const char* error_name(DecodeError e);  // e.g. "bad_checksum"

struct Header {
  std::int32_t message_length = 0;
  std::int32_t request_id = 0;
  std::int32_t response_to = 0;
  std::int32_t op_code = 0;
};

// Reads the 16-byte header (little endian). `bytes` must hold >= 16 bytes.
Header read_header(Bytes bytes);
void write_header(std::uint8_t* out, const Header& h);

// Checks a freshly read header before the body is read: HTTP request
// detection (first word is "GET ", "POST", "PUT ", "HEAD", ...), length bounds
// against `max_size`, known opcode. Returns kNone when the body may be read.
DecodeError check_header(const Header& h, std::int32_t max_size = kMaxMessageSize);

// A validated BSON document inside the message bytes.
struct DocView {
  const std::uint8_t* data = nullptr;
  std::uint32_t size = 0;

  // A read-only bson_t over the bytes (bson_init_static); no copy.
  // libbson's static bson_t points into itself: initialize a variable
  // directly from the call (`bson_t b = view.as_bson();`) and never copy or
  // assign that bson_t afterwards. as_bson(&b) has no such caveat.
  bson_t as_bson() const;
  // Same, into caller storage; false (and `out` empty) if the view is not a
  // well-formed document. Nothing to destroy either way.
  bool as_bson(bson_t* out) const;
  // Relaxed extended JSON, for logs and tests.
  std::string to_json() const;
  // First key of the document ("" if empty).
  std::string_view first_key() const;
};

// Validates the BSON at `bytes` (length prefix, terminator, element walk,
// nested documents) and returns a view of exactly its declared size, or
// nullopt. `bytes` may extend beyond the document.
std::optional<DocView> parse_document(Bytes bytes);

// True when the document names one key twice at its top level or, with
// `deep`, in any document nested in it (array indexes are not compared).
// Servers differ in which copy of a duplicated field they read, so a command
// that has one cannot be judged safely.
bool has_duplicate_keys(const DocView& doc, bool deep = false);

// A kind-1 section: identifier plus zero or more BSON documents.
struct DocumentSequence {
  std::string_view identifier;
  Bytes documents;  // concatenated, already validated

  std::vector<DocView> docs() const;
  std::size_t count() const;
};

struct OpMsgView {
  std::uint32_t flags = 0;
  DocView body;
  DocumentSequence sequences[2];
  int sequence_count = 0;
  std::optional<std::uint32_t> checksum;  // present when kChecksumPresent

  bool more_to_come() const { return flags & kMoreToCome; }
  bool exhaust_allowed() const { return flags & kExhaustAllowed; }
  const DocumentSequence* sequence(std::string_view identifier) const;
};

struct OpQueryView {
  std::int32_t flags = 0;
  std::string_view full_collection_name;  // "db.coll" or "db.$cmd"
  std::int32_t number_to_skip = 0;
  std::int32_t number_to_return = 0;
  DocView query;
  std::optional<DocView> return_fields_selector;

  bool is_command() const;  // collection part is "$cmd"
  std::string_view database() const;
  std::string_view collection() const;
};

struct OpReplyView {
  std::int32_t response_flags = 0;
  std::int64_t cursor_id = 0;
  std::int32_t starting_from = 0;
  std::int32_t number_returned = 0;
  Bytes documents;  // validated
  std::vector<DocView> docs() const;
};

struct OpInsertView {
  std::int32_t flags = 0;
  std::string_view full_collection_name;
  Bytes documents;  // validated, at least one
  std::vector<DocView> docs() const;
};

struct OpUpdateView {
  std::string_view full_collection_name;
  std::int32_t flags = 0;  // bit 0 upsert, bit 1 multi
  DocView selector;
  DocView update;
  bool multi() const { return flags & 2; }
  bool upsert() const { return flags & 1; }
};

struct OpDeleteView {
  std::string_view full_collection_name;
  std::int32_t flags = 0;  // bit 0 SingleRemove
  DocView selector;
  bool single_remove() const { return flags & 1; }
};

struct OpGetMoreView {
  std::string_view full_collection_name;
  std::int32_t number_to_return = 0;
  std::int64_t cursor_id = 0;
};

struct OpKillCursorsView {
  std::int32_t number_of_cursor_ids = 0;
  Bytes cursor_ids;  // 8 bytes each
};

// Each decoder takes the whole message (header included) and validates it
// entirely: lengths, BSON, trailing bytes. On failure `error` says why.
template <class View>
struct Decoded {
  DecodeError error = DecodeError::kNone;
  View view{};
  bool ok() const { return error == DecodeError::kNone; }
};

// verify_checksum: when the checksum flag is set, compute CRC-32C over every
// byte before it and compare.
Decoded<OpMsgView> decode_op_msg(Bytes message, bool verify_checksum = true);
Decoded<OpQueryView> decode_op_query(Bytes message);
Decoded<OpReplyView> decode_op_reply(Bytes message);
Decoded<OpInsertView> decode_op_insert(Bytes message);
Decoded<OpUpdateView> decode_op_update(Bytes message);
Decoded<OpDeleteView> decode_op_delete(Bytes message);
Decoded<OpGetMoreView> decode_op_get_more(Bytes message);
Decoded<OpKillCursorsView> decode_op_kill_cursors(Bytes message);

struct CompressedView {
  std::int32_t original_opcode = 0;
  std::int32_t uncompressed_size = 0;  // without header
  CompressorId compressor = CompressorId::kNoop;
  Bytes compressed;
};
Decoded<CompressedView> decode_op_compressed(Bytes message);

// Inflates an OP_COMPRESSED message into `out` as a complete plain message
// (a 16-byte header with the original opcode, same requestID/responseTo,
// then the inflated body). Checks uncompressedSize against `max_size` before
// inflating and that the inflated size matches; rejects nested compression.
DecodeError inflate(Bytes message, std::vector<std::uint8_t>& out,
                    std::int32_t max_size = kMaxMessageSize);

// Compresses a plain message into an OP_COMPRESSED message (for tests and
// for replies the proxy synthesizes when it chooses to compress).
std::vector<std::uint8_t> compress(Bytes plain_message, CompressorId compressor);

// What the hot path needs of a client request: decoded fully enough to
// validate it and to know which command it is. For OP_COMPRESSED the
// inflated message lives in `scratch` and the views point into it.
struct Request {
  Header header;                      // of the message as received
  std::int32_t effective_opcode = 0;  // original opcode when compressed
  bool compressed = false;
  std::string_view command;     // OP_MSG/OP_QUERY $cmd: first key of the body
  std::string_view database;    // OP_MSG: $db; OP_QUERY/legacy: from the namespace
  std::string_view collection;  // legacy ops and non-command OP_QUERY
  bool more_to_come = false;    // OP_MSG flag; legacy writes are always unacknowledged
  bool exhaust_allowed = false;
  std::optional<OpMsgView> msg;
  std::optional<OpQueryView> query;
  // The command document: the OP_MSG body, or the OP_QUERY `$cmd` query
  // with a {$query: {...}} wrapper taken off. Unset for other messages.
  std::optional<DocView> body;
};

// has_duplicate_keys(deep) over the command document and every document
// of the OP_MSG sequences. decode_request() already refuses a command
// document with a duplicated top-level key; this is the full check, for the
// commands that are judged.
bool has_duplicate_fields(const Request& request);

// Decodes and validates a complete client message (header included). A
// command document (OP_MSG body, OP_QUERY `$cmd` query) that names one
// top-level key twice is refused (kDuplicateField).
Decoded<Request> decode_request(Bytes message, std::vector<std::uint8_t>& scratch,
                                std::int32_t max_size = kMaxMessageSize);

// CRC-32C (Castagnoli), as used by the OP_MSG checksum.
std::uint32_t crc32c(Bytes data, std::uint32_t crc = 0);

// Builds a complete OP_MSG message with a single kind-0 body, no flags, the
// given request id and responseTo.
std::vector<std::uint8_t> build_op_msg(const bson_t* body, std::int32_t request_id,
                                       std::int32_t response_to, std::uint32_t flags = 0);

// Builds an OP_MSG error reply {ok: 0, errmsg, code, codeName} answering
// `response_to`. No error labels are ever added.
std::vector<std::uint8_t> build_error_reply(std::int32_t request_id, std::int32_t response_to,
                                            std::int32_t code, std::string_view code_name,
                                            std::string_view errmsg);

// Builds an OP_REPLY with one document (answers to OP_QUERY).
std::vector<std::uint8_t> build_op_reply(const bson_t* doc, std::int32_t request_id,
                                         std::int32_t response_to);

}  // namespace mongoguard::wire
