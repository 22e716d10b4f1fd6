// Rendering BSON documents for logs without leaking the values in them.
//
// Filters and commands end up in the audit log and on the operator's page;
// the values in them (e-mail addresses, names, tokens) must not. The
// redacted form keeps every key and operator, so the *shape* of a filter
// stays visible, and replaces each leaf value by a placeholder naming its
// type. Pure functions, no I/O.
#pragma once

#include <bson/bson.h>

#include <optional>
#include <string>
#include <string_view>

namespace mongoguard::wire {

// The placeholder for a BSON type: "<string>", "<int32>", "<objectId>", ...
// ("<unknown>" for a type byte libbson does not define).
std::string_view type_placeholder(bson_type_t type);

// Relaxed extended JSON of `doc` with every leaf value replaced by its type
// placeholder, e.g. {"name": "<string>", "age": {"$gt": "<int32>"}}. Keys,
// nesting and array lengths are kept. Returns "" when `doc` is null or cannot
// be rendered (a key that is not UTF-8).
std::string redacted_json(const bson_t* doc);

// The same redaction as a document: appends to `out` (initialised by the
// caller) a copy of `doc` with every leaf value replaced by its type
// placeholder. False when `doc` is null or cannot be read.
bool redact_document(const bson_t* doc, bson_t* out);

// Relaxed extended JSON of `doc`, unredacted; "" when `doc` is null or
// libbson refuses it (a string that is not UTF-8).
std::string relaxed_json(const bson_t* doc);

// The same text as relaxed_json(), byte for byte, written without libbson's
// JSON writer (which appends escaped text a character at a time: about a
// hundred instructions per byte, paid on every audited command). Handles
// documents, arrays, strings and keys with nothing to escape, int32, int64,
// booleans, null and dates from 1970 to 9999; for anything else it returns
// nullopt and the caller renders with relaxed_json().
std::optional<std::string> relaxed_json_plain(const bson_t* doc);

// redacted_json(doc)'s text, byte for byte, appended to `out` without
// building the redacted document first. False, with `out` as it was, for a
// key this fast path does not write (one to escape or not UTF-8) or a
// corrupt document: the caller renders with redacted_json().
bool append_redacted_json_plain(const bson_t* doc, std::string& out);

}  // namespace mongoguard::wire
