// Parsers for client identity: hello metadata and authentication starts.
#include "policy/identity.h"

#include "policy/classify_internal.h"

namespace mongoguard::policy {
namespace {

using detail::as_document;
using detail::as_string;
using detail::find;

std::string string_at(const bson_t* doc, const char* dotted_path) {
  bson_iter_t it;
  bson_iter_t found;
  if (doc == nullptr || !bson_iter_init(&it, doc) ||
      !bson_iter_find_descendant(&it, dotted_path, &found)) {
    return {};
  }
  return std::string(as_string(&found).value_or(std::string_view{}));
}

// The SASL payload: binary (what drivers send) or a string.
std::optional<std::string_view> payload_of(const bson_t* body) {
  bson_iter_t it;
  if (!find(body, "payload", &it)) return std::nullopt;
  if (BSON_ITER_HOLDS_BINARY(&it)) {
    bson_subtype_t subtype;
    std::uint32_t len = 0;
    const std::uint8_t* data = nullptr;
    bson_iter_binary(&it, &subtype, &len, &data);
    return std::string_view(reinterpret_cast<const char*>(data), len);
  }
  return as_string(&it);
}

bool ok_is_one(const bson_t* reply) {
  bson_iter_t it;
  if (!find(reply, "ok", &it)) return false;
  return detail::is_numeric_one(&it) || (BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it));
}

std::string_view first_key(const bson_t* doc) {
  bson_iter_t it;
  if (!bson_iter_init(&it, doc) || !bson_iter_next(&it)) return {};
  return bson_iter_key(&it);
}

}  // namespace

std::string AuthStart::qualify_user(std::string_view user, std::string_view database) {
  std::string out;
  out.reserve(user.size() + 1 + database.size());
  out.append(user).append("@").append(database);
  return out;
}

std::string rule_user(std::string_view entry, bool* bare) {
  const bool has_db = entry.find('@') != std::string_view::npos;
  if (bare != nullptr) *bare = !has_db;
  if (has_db) return std::string(entry);
  return AuthStart::qualify_user(entry, "admin");
}

ClientMetadata parse_client_metadata(const bson_t* hello_body) {
  ClientMetadata m;
  m.application_name = string_at(hello_body, "client.application.name");
  m.driver_name = string_at(hello_body, "client.driver.name");
  m.driver_version = string_at(hello_body, "client.driver.version");
  return m;
}

std::optional<std::string> scram_client_first_user(std::string_view payload) {
  // gs2-header: cbind-flag "," [authzid] "," — then the bare message's
  // attributes, one of which is n=<saslname>.
  const auto c1 = payload.find(',');
  if (c1 == std::string_view::npos) return std::nullopt;
  const auto c2 = payload.find(',', c1 + 1);
  if (c2 == std::string_view::npos) return std::nullopt;
  std::string_view bare = payload.substr(c2 + 1);
  while (!bare.empty()) {
    const auto comma = bare.find(',');
    const std::string_view attr = bare.substr(0, comma);
    if (attr.starts_with("n=")) {
      std::string user;
      const std::string_view name = attr.substr(2);
      for (std::size_t i = 0; i < name.size(); ++i) {
        if (name[i] != '=') {
          user.push_back(name[i]);
        } else if (name.substr(i, 3) == "=2C") {
          user.push_back(',');
          i += 2;
        } else if (name.substr(i, 3) == "=3D") {
          user.push_back('=');
          i += 2;
        } else {
          return std::nullopt;  // '=' is only legal as an escape
        }
      }
      if (user.empty()) return std::nullopt;
      return user;
    }
    if (comma == std::string_view::npos) break;
    bare.remove_prefix(comma + 1);
  }
  return std::nullopt;
}

std::optional<std::string> plain_user(std::string_view payload) {
  // [authzid] NUL authcid NUL passwd. Only the authcid is copied; the
  // password is never read into anything that outlives this call.
  const auto nul1 = payload.find('\0');
  if (nul1 == std::string_view::npos) return std::nullopt;
  const auto nul2 = payload.find('\0', nul1 + 1);
  if (nul2 == std::string_view::npos) return std::nullopt;
  const std::string_view user = payload.substr(nul1 + 1, nul2 - nul1 - 1);
  if (user.empty()) return std::nullopt;
  return std::string(user);
}

std::optional<AuthStart> parse_auth_start(const bson_t* body, std::string_view request_db) {
  if (body == nullptr) return std::nullopt;
  const std::string_view command = first_key(body);
  bson_iter_t it;
  if (command != "saslStart" && command != "authenticate") {
    // hello / isMaster: the first step may ride along.
    bson_t spec;
    if (!find(body, "speculativeAuthenticate", &it) || !as_document(&it, &spec)) {
      return std::nullopt;
    }
    std::string_view db = request_db;
    bson_iter_t db_it;
    if (find(&spec, "db", &db_it)) db = as_string(&db_it).value_or(request_db);
    return parse_auth_start(&spec, db);
  }
  AuthStart start;
  start.database = std::string(request_db);
  // Without a database from the caller: the body's own $db (OP_MSG), or the
  // `db` a speculativeAuthenticate document carries.
  if (start.database.empty() && (find(body, "$db", &it) || find(body, "db", &it))) {
    start.database = std::string(as_string(&it).value_or(std::string_view{}));
  }
  if (find(body, "mechanism", &it)) {
    start.mechanism = std::string(as_string(&it).value_or(std::string_view{}));
  }
  std::optional<std::string> user;
  if (command == "authenticate") {
    if (find(body, "user", &it)) {
      if (auto s = as_string(&it)) user = std::string(*s);
    }
  } else if (auto payload = payload_of(body)) {
    if (start.mechanism == "PLAIN") {
      user = plain_user(*payload);
    } else if (start.mechanism.starts_with("SCRAM-SHA-")) {
      user = scram_client_first_user(*payload);
    }
  }
  if (!user) return std::nullopt;
  start.user = std::move(*user);
  return start;
}

std::optional<std::string> sasl_start_user(const bson_t* sasl_start_body) {
  auto start = parse_auth_start(sasl_start_body);
  if (!start) return std::nullopt;
  return std::move(start->user);
}

bool sasl_reply_done_ok(const bson_t* reply) {
  if (reply == nullptr || !ok_is_one(reply)) return false;
  bson_iter_t it;
  bson_t spec;
  const bson_t* holder = reply;
  if (find(reply, "speculativeAuthenticate", &it) && as_document(&it, &spec)) holder = &spec;
  return find(holder, "done", &it) && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
}

bool has_speculative_reply(const bson_t* hello_reply) {
  bson_iter_t it;
  bson_t spec;
  return hello_reply != nullptr && find(hello_reply, "speculativeAuthenticate", &it) &&
         as_document(&it, &spec);
}

std::optional<std::string> x509_reply_user(const bson_t* reply) {
  if (reply == nullptr || !ok_is_one(reply)) return std::nullopt;
  bson_iter_t it;
  bson_t spec;
  const bson_t* holder = reply;
  if (find(reply, "speculativeAuthenticate", &it) && as_document(&it, &spec)) holder = &spec;
  if (!find(holder, "user", &it)) return std::nullopt;
  auto s = as_string(&it);
  if (!s) return std::nullopt;
  return std::string(*s);
}

}  // namespace mongoguard::policy
