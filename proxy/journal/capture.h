// What to read before a destructive command is forwarded, so that the
// journal holds the documents it will affect. Pure: builds `find` commands
// from the request and reads their replies; the data path sends them on the
// client's own connection.
//
// One read per statement, with the statement's own filter, collation and
// hint (findAndModify: its sort; statements limited to one document: limit
// 1), inside the client's logical session when the request carries one
// (lsid). What cannot be read faithfully is an error, never a guess: a
// command inside a multi-document transaction (the read would have to join
// it), a legacy OP_DELETE/OP_UPDATE, a statement shaped unexpectedly.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bson/wire.h"
#include "proxy/journal/entry.h"

namespace mongoguard::journal {

// One statement's read.
struct CaptureRead {
  std::string ns;  // "db.collection"
  Operation op = Operation::kDelete;
  Bson filter;  // the statement's own filter (empty document when it has none)
  Bson find;    // the find command's body, $db and lsid included
  bool single = false;
  // A delete, or a findAndModify with remove: nothing is left to read after.
  bool removes = false;
};

struct CapturePlan {
  std::vector<CaptureRead> reads;
  std::string error;  // non-empty: the command cannot be journaled, and why
  bool ok() const { return error.empty(); }
};

// The reads for the statements of `request` aimed at `namespaces`. At most
// `max_documents` documents are asked for per statement (plus one, so that a
// statement affecting more is seen to).
CapturePlan plan_capture(const wire::Request& request, const std::set<std::string>& namespaces,
                         std::int64_t max_documents);

// A find's (or getMore's) reply: the documents of its batch, and the cursor
// to continue (0 when exhausted).
struct CaptureBatch {
  std::vector<Bson> documents;
  std::int64_t cursor = 0;
  std::string error;
};
CaptureBatch read_capture_reply(const bson_t* reply);

// The getMore continuing `read` on `cursor`.
Bson capture_get_more(const CaptureRead& read, std::int64_t cursor);

// {_id: {$in: ids}} over `ns`, for the after-images of an update; lsid from
// `read` when it had one.
Bson capture_after_find(const CaptureRead& read, const std::vector<Bson>& ids);

// `read`'s find, its filter narrowed to documents other than `ids`: what an
// earlier delete of the same command removes, a later statement cannot
// affect (the server runs them in order; the reads all come first).
Bson capture_excluding(const CaptureRead& read, const std::vector<Bson>& ids);

// `read`'s find narrowed to a preview: at most `n` documents, in one batch
// (no cursor left open).
Bson capture_preview(const CaptureRead& read, std::int64_t n);

// `out` reading `bytes` in place; false (and `out` untouched) when they are
// not a document: libbson aborts on a null pointer, and an unknown
// after-image is an empty vector.
bool bson_view(const Bson& bytes, bson_t* out);

// {_id: <value>} of a document, as the journal keys it; nullopt without _id.
std::optional<Bson> document_id(const Bson& document);

}  // namespace mongoguard::journal
