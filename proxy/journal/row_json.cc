#include "proxy/journal/row_json.h"

#include <bson/bson.h>
#include <openssl/evp.h>

#include <charconv>
#include <ctime>

#include "config/config.h"
#include "proxy/journal/capture.h"
#include "proxy/observe/json.h"

namespace mongoguard::journal {

using nlohmann::json;

namespace {

std::string iso_ms(std::int64_t ms) {
  return proxy::iso_time(std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)));
}

std::optional<Bson> bson_field(const json& value, const char* key, std::string& error) {
  if (!value.contains(key) || !value[key].is_string()) {
    error = std::string("row without ") + key;
    return std::nullopt;
  }
  auto bytes = base64_decode(value[key].get<std::string>());
  bson_t doc;
  if (!bytes || !bson_view(*bytes, &doc) || !bson_validate(&doc, BSON_VALIDATE_NONE, nullptr)) {
    error = std::string("row whose ") + key + " is not a BSON document";
    return std::nullopt;
  }
  return bytes;
}

std::string text_field(const json& value, const char* key) {
  return value.contains(key) && value[key].is_string() ? value[key].get<std::string>() : "";
}

// "2026-12-01T10:00:00Z", with optional fractional seconds: ms since the epoch.
std::optional<std::int64_t> parse_iso(std::string_view text) {
  std::tm tm{};
  const std::string s(text);
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  std::int64_t ms = 0;
  if (*end == '.') {
    int digits = 0;
    for (++end; *end >= '0' && *end <= '9'; ++end, ++digits) {
      if (digits < 3) ms = ms * 10 + (*end - '0');
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (std::string_view(end) != "Z") return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + ms;
}

}  // namespace

std::string base64_encode(const Bson& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<Bson> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  Bson out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as bytes: take them off.
  std::size_t size = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') --size;
  if (text.size() > 1 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

json document_json(const Bson& bytes) {
  bson_t doc;
  if (!bson_view(bytes, &doc)) return "(not a BSON document)";
  std::size_t length = 0;
  char* text = bson_as_relaxed_extended_json(&doc, &length);
  if (text == nullptr) return "(not a BSON document)";
  auto parsed = json::parse(text, text + length, nullptr, false);
  bson_free(text);
  if (parsed.is_discarded()) return "(not representable as JSON)";
  return parsed;
}

json row_json(const Row& row) {
  json out{{"row", row.id},
           {"entry", row.entry_id},
           {"time", iso_ms(row.time_ms)},
           {"time_ms", row.time_ms},
           {"connection", row.connection},
           {"client", row.client},
           {"user", row.user},
           {"app", row.app},
           {"rule", row.rule},
           {"operation", operation_name(row.op)},
           {"ns", row.ns},
           {"filter", document_json(row.filter)},
           {"_id", document_json(row.doc_id)},
           {"before", document_json(row.before)},
           {"filter_bson", base64_encode(row.filter)},
           {"id_bson", base64_encode(row.doc_id)},
           {"before_bson", base64_encode(row.before)}};
  out["after"] = row.after && !row.after->empty() ? document_json(*row.after) : json();
  out["after_bson"] = row.after ? json(base64_encode(*row.after)) : json();
  out["hold"] = row.hold_id ? json(*row.hold_id) : json();
  out["restored_at"] = row.restored_at_ms ? json(iso_ms(*row.restored_at_ms)) : json();
  out["restored_by"] = row.restored_by;
  return out;
}

std::optional<Row> row_from_json(const json& value, std::string& error) {
  if (!value.is_object()) {
    error = "a row is not an object";
    return std::nullopt;
  }
  Row row;
  auto filter = bson_field(value, "filter_bson", error);
  auto id = bson_field(value, "id_bson", error);
  auto before = bson_field(value, "before_bson", error);
  const auto op = parse_operation(text_field(value, "operation"));
  if (!filter || !id || !before) return std::nullopt;
  if (!op || !value.value("row", json()).is_number_integer()) {
    error = "a row without its number or operation";
    return std::nullopt;
  }
  row.filter = std::move(*filter);
  row.doc_id = std::move(*id);
  row.before = std::move(*before);
  if (value.contains("after_bson") && value["after_bson"].is_string()) {
    auto after = base64_decode(value["after_bson"].get<std::string>());
    if (!after) {
      error = "a row whose after_bson is not base64";
      return std::nullopt;
    }
    row.after = std::move(*after);
  }
  row.op = *op;
  row.id = value["row"].get<std::int64_t>();
  row.entry_id = value.value("entry", std::int64_t{0});
  row.time_ms = value.value("time_ms", std::int64_t{0});
  row.connection = value.value("connection", std::uint64_t{0});
  row.client = text_field(value, "client");
  row.user = text_field(value, "user");
  row.app = text_field(value, "app");
  row.rule = text_field(value, "rule");
  row.ns = text_field(value, "ns");
  if (value.contains("hold") && value["hold"].is_number_unsigned()) {
    row.hold_id = value["hold"].get<std::uint64_t>();
  }
  if (value.contains("restored_at") && value["restored_at"].is_string()) {
    row.restored_at_ms = parse_iso(value["restored_at"].get<std::string>());
  }
  row.restored_by = text_field(value, "restored_by");
  return row;
}

json summary_json(const NamespaceSummary& summary) {
  return json{{"ns", summary.ns},
              {"entries", summary.entries},
              {"documents", summary.documents},
              {"by_operation", summary.documents_by_operation}};
}

std::optional<std::int64_t> parse_time_bound(std::string_view text, std::int64_t now_ms) {
  if (auto ago = config::parse_duration(text)) return now_ms - ago->count();
  return parse_iso(text);
}

std::string query_from_params(const std::vector<std::pair<std::string, std::string>>& params,
                              std::int64_t now_ms, Query& query) {
  for (const auto& [key, value] : params) {
    if (value.empty()) continue;
    if (key == "ns") {
      query.ns = value;
    } else if (key == "rule") {
      query.rule = value;
    } else if (key == "since" || key == "until") {
      auto at = parse_time_bound(value, now_ms);
      if (!at) return key + " must be a duration (10m, 2h) or a time (2026-12-01T10:00:00Z)";
      (key == "since" ? query.since_ms : query.until_ms) = *at;
    } else if (key == "hold" || key == "limit") {
      std::uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size()) {
        return key + " must be a non-negative integer";
      }
      if (key == "hold") {
        query.hold_id = n;
      } else {
        query.limit = static_cast<std::size_t>(n);
      }
    } else {
      return "unknown parameter " + key;
    }
  }
  return "";
}

}  // namespace mongoguard::journal
