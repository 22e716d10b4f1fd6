// Journal rows as the admin API carries them, and back. Each document goes
// twice: as relaxed extended JSON for people (`before`, `after`, `filter`,
// `_id`) and as its exact BSON bytes in base64 (`before_bson`, ...), which
// is what `ctl restore` and `ctl journal export` use, so that what goes back
// into the database is byte for byte what the journal read.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/journal/entry.h"
#include "proxy/journal/store.h"

namespace mongoguard::journal {

std::string base64_encode(const Bson& bytes);
// nullopt when `text` is not base64 of whole bytes.
std::optional<Bson> base64_decode(std::string_view text);

// A BSON document as relaxed extended JSON (a JSON value; a string saying
// so when the bytes are not a document).
nlohmann::json document_json(const Bson& bytes);

nlohmann::json row_json(const Row& row);
// What row_json wrote; nullopt (and `error`) when a field is missing or its
// BSON does not decode.
std::optional<Row> row_from_json(const nlohmann::json& value, std::string& error);

nlohmann::json summary_json(const NamespaceSummary& summary);

// --since / --until: a duration ago ("10m") or an ISO time ("...Z"), as ms.
std::optional<std::int64_t> parse_time_bound(std::string_view text, std::int64_t now_ms);

// A Query from the API's parameters (ns, since, until, rule, hold, limit) as
// milliseconds and strings; "" when fine, else what is wrong.
std::string query_from_params(const std::vector<std::pair<std::string, std::string>>& params,
                              std::int64_t now_ms, Query& query);

}  // namespace mongoguard::journal
