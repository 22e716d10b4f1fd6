// BSON document validation and views over validated documents.
#include <bson/bson.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "bson/wire.h"
#include "bson/wire_internal.h"

namespace mongoguard::wire {
namespace detail {
namespace {

// BSON element types (bsonspec.org).
enum : std::uint8_t {
  kDouble = 0x01,
  kString = 0x02,
  kDocument = 0x03,
  kArray = 0x04,
  kBinary = 0x05,
  kUndefined = 0x06,
  kObjectId = 0x07,
  kBool = 0x08,
  kDateTime = 0x09,
  kNull = 0x0A,
  kRegex = 0x0B,
  kDbPointer = 0x0C,
  kCode = 0x0D,
  kSymbol = 0x0E,
  kCodeWithScope = 0x0F,
  kInt32 = 0x10,
  kTimestamp = 0x11,
  kInt64 = 0x12,
  kDecimal128 = 0x13,
  kMinKey = 0xFF,
  kMaxKey = 0x7F,
};

constexpr std::uint32_t kBinarySubtypeOld = 0x02;

// A string value (int32 length counting the NUL, bytes, NUL) at `p` with
// `avail` bytes available; returns its total size or 0 if malformed.
std::uint32_t string_size(const std::uint8_t* p, std::uint32_t avail) {
  if (avail < 4) return 0;
  const std::uint32_t l = load_u32(p);
  if (l < 1 || l > avail - 4 || p[4 + l - 1] != 0) return 0;
  return 4 + l;
}

// Sizes of the values that need more than their length read: 0 when
// malformed (no such value is empty).
inline std::uint32_t binary_size(const std::uint8_t* v, std::uint32_t avail) {
  if (avail < 5) return 0;
  const std::uint32_t l = load_u32(v);
  if (l > avail - 5) return 0;
  if (v[4] == kBinarySubtypeOld && (l < 4 || load_u32(v + 5) != l - 4)) return 0;
  return 5 + l;
}

inline std::uint32_t regex_size(const std::uint8_t* v, std::uint32_t avail) {
  const auto* a = static_cast<const std::uint8_t*>(std::memchr(v, 0, avail));
  if (a == nullptr) return 0;
  const auto rest = avail - static_cast<std::uint32_t>(a + 1 - v);
  const auto* b = static_cast<const std::uint8_t*>(std::memchr(a + 1, 0, rest));
  if (b == nullptr) return 0;
  return static_cast<std::uint32_t>(b + 1 - v);
}

// The documents open around the element being read: ends[d] is the offset
// of the terminating NUL of the one at depth d.
struct Nesting {
  std::uint32_t ends[kMaxBsonDepth];
  int depth = 0;

  bool push(std::uint32_t end) {
    if (depth + 1 >= kMaxBsonDepth) return false;
    ends[++depth] = end;
    return true;
  }
};

// A document or array value at offset `pos`: enters it (pos moves past its
// length) or says it is malformed.
inline bool enter_document(const std::uint8_t* data, std::uint32_t& pos, std::uint32_t avail,
                           Nesting& nesting) {
  if (avail < 5) return false;
  const std::uint32_t l = load_u32(data + pos);
  if (l < 5 || l > avail || data[pos + l - 1] != 0) return false;
  if (!nesting.push(pos + l - 1)) return false;
  pos += 4;
  return true;
}

// A code-with-scope value: int32 total, string code, document scope; the
// total covers all three. Checks the code and enters the scope.
inline bool enter_code_with_scope(const std::uint8_t* data, std::uint32_t& pos, std::uint32_t avail,
                                  Nesting& nesting) {
  const std::uint8_t* v = data + pos;
  if (avail < 14) return false;
  const std::uint32_t total = load_u32(v);
  if (total < 14 || total > avail) return false;
  const std::uint32_t code = string_size(v + 4, total - 4);
  if (code == 0 || 4 + code > total - 5) return false;
  const std::uint32_t scope = pos + 4 + code;
  const std::uint32_t scope_len = load_u32(data + scope);
  if (scope_len < 5 || 4 + code + scope_len != total || data[scope + scope_len - 1] != 0) {
    return false;
  }
  if (!nesting.push(scope + scope_len - 1)) return false;
  pos = scope + 4;
  return true;
}

// The value of type `type` at `pos`, with `avail` bytes before the
// enclosing document's terminator: moves `pos` past it, or into it when it
// is a document. False when it is malformed.
inline bool read_value(std::uint8_t type, const std::uint8_t* data, std::uint32_t& pos,
                       std::uint32_t avail, Nesting& nesting) {
  const std::uint8_t* v = data + pos;
  std::uint32_t n = 0;
  switch (type) {
    case kDouble:
    case kDateTime:
    case kTimestamp:
    case kInt64:
      n = 8;
      break;
    case kInt32:
      n = 4;
      break;
    case kDecimal128:
      n = 16;
      break;
    case kObjectId:
      n = 12;
      break;
    case kBool:
      if (avail < 1 || v[0] > 1) return false;
      n = 1;
      break;
    case kUndefined:
    case kNull:
    case kMinKey:
    case kMaxKey:
      break;
    case kString:
    case kCode:
    case kSymbol:
      if ((n = string_size(v, avail)) == 0) return false;
      break;
    case kDbPointer:
      if ((n = string_size(v, avail)) == 0) return false;
      n += 12;
      break;
    case kBinary:
      if ((n = binary_size(v, avail)) == 0) return false;
      break;
    case kRegex:
      if ((n = regex_size(v, avail)) == 0) return false;
      break;
    case kDocument:
    case kArray:
      return enter_document(data, pos, avail, nesting);
    case kCodeWithScope:
      return enter_code_with_scope(data, pos, avail, nesting);
    default:
      return false;
  }
  if (n > avail) return false;
  pos += n;
  return true;
}

}  // namespace

bool validate_bson(const std::uint8_t* data, std::uint32_t size) {
  if (data == nullptr || size < 5 || load_u32(data) != size || data[size - 1] != 0) return false;
  Nesting nesting;
  nesting.ends[0] = size - 1;
  std::uint32_t pos = 4;
  for (;;) {
    const std::uint32_t end = nesting.ends[nesting.depth];
    if (pos == end) {
      if (nesting.depth == 0) return true;
      pos = end + 1;
      --nesting.depth;
      continue;
    }
    const std::uint8_t type = data[pos++];
    if (type == 0) return false;  // a terminator before the declared end
    const auto* nul = find_nul(data + pos, data + end);
    if (nul == nullptr) return false;
    pos = static_cast<std::uint32_t>(nul - data) + 1;
    // Value bytes before the terminator.
    if (!read_value(type, data, pos, end - pos, nesting)) return false;
  }
}

DecodeError read_document(Bytes bytes, DocView& out) {
  if (bytes.size() < 4) return DecodeError::kTruncated;
  const std::uint32_t size = load_u32(bytes.data());
  if (size > bytes.size()) return DecodeError::kTruncated;
  if (size > static_cast<std::uint32_t>(kMaxBsonObjectSize) || !validate_bson(bytes.data(), size)) {
    return DecodeError::kInvalidBson;
  }
  out = DocView{bytes.data(), size};
  return DecodeError::kNone;
}

DecodeError read_documents(Bytes bytes, std::size_t min_count, std::size_t* count) {
  std::size_t n = 0;
  while (!bytes.empty()) {
    DocView doc;
    const DecodeError e = read_document(bytes, doc);
    if (e != DecodeError::kNone) return e;
    bytes = bytes.subspan(doc.size);
    ++n;
  }
  if (count != nullptr) *count = n;
  return n < min_count ? DecodeError::kTruncated : DecodeError::kNone;
}

std::vector<DocView> split_documents(Bytes documents) {
  std::vector<DocView> out;
  while (documents.size() >= 5) {
    const std::uint32_t size = load_u32(documents.data());
    if (size < 5 || size > documents.size()) break;  // cannot happen once validated
    out.push_back(DocView{documents.data(), size});
    documents = documents.subspan(size);
  }
  return out;
}

namespace {

// The keys seen so far in one document. Command bodies and filters hold a
// handful of keys: those are kept in place, with no allocation, since this
// runs for every message. A 64-bit Bloom mask answers most adds without
// comparing: a cheap hash of each key (its length and its first and last
// bytes) sets two of its bits, and only a key whose two bits are both
// set already is compared with the kept ones (length first). With seven keys
// kept, a new one is compared about 4% of the time, against 10% for one bit.
// Past kInline keys they move to a vector that is sorted once at the end, so
// that a document of many keys stays O(n log n).
class KeySet {
 public:
  // Whether `key` was already seen (only decided here while inline).
  bool add(std::string_view key) {
    const std::uint64_t bit = signature(key);
    if (count_ < kInline && (seen_ & bit) != bit) {
      seen_ |= bit;
      keys_[count_++] = Key{key.data(), key.size()};
      return false;
    }
    return add_slow(key, bit);
  }
  // Whether the spilled keys hold a duplicate.
  bool spilled_duplicate() {
    if (spill_.empty()) return false;
    std::sort(spill_.begin(), spill_.end());
    return std::adjacent_find(spill_.begin(), spill_.end()) != spill_.end();
  }

 private:
  static constexpr std::size_t kInline = 16;
  struct Key {
    const char* data;
    std::size_t size;
  };

  // The two mask bits of `key`.
  static std::uint64_t signature(std::string_view key) {
    if (key.empty()) return 1;
    const std::uint64_t first = static_cast<unsigned char>(key.front());
    const std::uint64_t last = static_cast<unsigned char>(key.back());
    // Fibonacci hashing: two six-bit fields from the top of the product.
    const std::uint64_t h = (key.size() | first << 8 | last << 16) * 0x9E3779B97F4A7C15ull;
    return std::uint64_t{1} << (h >> 58) | std::uint64_t{1} << ((h >> 52) & 63);
  }

  // Keys are short: a loop beats a call to memcmp for the usual few bytes.
  static bool same_bytes(const char* kept, std::string_view key) {
    if (key.size() > 16) return std::memcmp(kept, key.data(), key.size()) == 0;
    for (std::size_t i = 0; i < key.size(); ++i) {
      if (kept[i] != key[i]) return false;
    }
    return true;
  }

  // A key whose two bits were set, or any key once there are kInline of them
  // (out of line, so that add stays small enough to be inlined).
  [[gnu::noinline]] bool add_slow(std::string_view key, std::uint64_t bit) {
    if (spill_.empty()) {
      if ((seen_ & bit) == bit) {
        for (std::size_t i = 0; i < count_; ++i) {
          if (keys_[i].size == key.size() && same_bytes(keys_[i].data, key)) return true;
        }
      }
      if (count_ < kInline) {
        seen_ |= bit;
        keys_[count_++] = Key{key.data(), key.size()};
        return false;
      }
      for (const Key& k : keys_) spill_.emplace_back(k.data, k.size);
    }
    spill_.push_back(key);
    return false;
  }

  std::uint64_t seen_ = 0;
  // Only [0, count_) is ever read: left uninitialised on purpose.
  std::array<Key, kInline> keys_;
  std::size_t count_ = 0;
  std::vector<std::string_view> spill_;
};

}  // namespace

bool duplicate_keys(const DocView& doc, bool deep, bool compare) {
  KeySet keys;
  ElementCursor cursor(doc);
  Element e;
  while (cursor.next(e)) {
    if (compare && keys.add(e.key)) return true;
    // Nesting is bounded by the validation (kMaxBsonDepth), so is this.
    if (deep && (e.type == kDocument || e.type == kArray) &&
        duplicate_keys(DocView{e.value, e.value_size}, true, e.type == kDocument)) {
      return true;
    }
  }
  return keys.spilled_duplicate();
}

bool duplicate_keys_finding(const DocView& doc, std::string_view key, Element& found, bool& have) {
  KeySet keys;
  ElementCursor cursor(doc);
  Element e;
  have = false;
  while (cursor.next(e)) {
    if (keys.add(e.key)) return true;
    if (!have && e.key == key) {
      found = e;
      have = true;
    }
  }
  return keys.spilled_duplicate();
}

bool find_element(const DocView& doc, std::string_view key, Element& out) {
  ElementCursor cursor(doc);
  while (cursor.next(out)) {
    if (out.key == key) return true;
  }
  return false;
}

}  // namespace detail

bool has_duplicate_keys(const DocView& doc, bool deep) {
  return detail::duplicate_keys(doc, deep, /*compare=*/true);
}

bson_t DocView::as_bson() const {
  // Returned through the caller's storage (named return value). A bson_t
  // made by bson_init_static points into itself, so the result must not be
  // copied or assigned afterwards; as_bson(bson_t*) avoids the question.
  bson_t b;
  as_bson(&b);
  return b;
}

bool DocView::as_bson(bson_t* out) const {
  if (data == nullptr || !bson_init_static(out, data, size)) {
    bson_init(out);  // an empty, stack-only document: nothing to free
    return false;
  }
  return true;
}

std::string DocView::to_json() const {
  bson_t b;
  if (!as_bson(&b)) return {};
  std::size_t len = 0;
  char* json = bson_as_relaxed_extended_json(&b, &len);
  if (json == nullptr) return {};  // libbson refuses strings that are not UTF-8
  std::string out(json, len);
  bson_free(json);
  return out;
}

std::string_view DocView::first_key() const {
  if (data == nullptr || size <= 5) return {};
  return std::string_view(reinterpret_cast<const char*>(data + 5));
}

std::optional<DocView> parse_document(Bytes bytes) {
  DocView doc;
  if (detail::read_document(bytes, doc) != DecodeError::kNone) return std::nullopt;
  return doc;
}

std::vector<DocView> DocumentSequence::docs() const { return detail::split_documents(documents); }

std::size_t DocumentSequence::count() const {
  std::size_t n = 0;
  Bytes rest = documents;
  while (rest.size() >= 5) {
    const std::uint32_t size = detail::load_u32(rest.data());
    if (size < 5 || size > rest.size()) break;
    rest = rest.subspan(size);
    ++n;
  }
  return n;
}

std::vector<DocView> OpReplyView::docs() const { return detail::split_documents(documents); }
std::vector<DocView> OpInsertView::docs() const { return detail::split_documents(documents); }

}  // namespace mongoguard::wire
