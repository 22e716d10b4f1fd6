#include "proxy/journal/restore.h"

#include <mongoc/mongoc.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>

#include "proxy/journal/capture.h"

namespace mongoguard::journal {

namespace {

constexpr std::size_t kIdsPerRead = 500;

struct ClientDeleter {
  void operator()(mongoc_client_t* c) const { mongoc_client_destroy(c); }
};
struct CollectionDeleter {
  void operator()(mongoc_collection_t* c) const { mongoc_collection_destroy(c); }
};
using Client = std::unique_ptr<mongoc_client_t, ClientDeleter>;
using Collection = std::unique_ptr<mongoc_collection_t, CollectionDeleter>;

// The driver's own messages: errors only (its warnings are about what a
// server does not support, such as endSessions, and say nothing to an operator).
void log_errors(mongoc_log_level_t level, const char* domain, const char* message, void*) {
  if (level <= MONGOC_LOG_LEVEL_ERROR) std::fprintf(stderr, "libmongoc %s: %s\n", domain, message);
}

void init_driver() {
  static std::once_flag once;
  std::call_once(once, [] {
    mongoc_init();
    std::atexit(mongoc_cleanup);  // the driver's globals go before the leak check looks
    mongoc_log_set_handler(log_errors, nullptr);
  });
}

Client connect(const std::string& uri_text, const std::string& app_name, std::string& error) {
  bson_error_t e;
  mongoc_uri_t* uri = mongoc_uri_new_with_error(uri_text.c_str(), &e);
  if (uri == nullptr) {
    error = std::string("bad --to URI: ") + e.message;
    return nullptr;
  }
  if (!mongoc_uri_get_appname(uri)) mongoc_uri_set_appname(uri, app_name.c_str());
  Client client(mongoc_client_new_from_uri_with_error(uri, &e));
  mongoc_uri_destroy(uri);
  if (!client) error = std::string("cannot connect: ") + e.message;
  if (client) mongoc_client_set_error_api(client.get(), MONGOC_ERROR_API_VERSION_2);
  return client;
}

Collection collection_of(mongoc_client_t* client, const std::string& ns) {
  const auto dot = ns.find('.');
  return Collection(
      mongoc_client_get_collection(client, ns.substr(0, dot).c_str(), ns.substr(dot + 1).c_str()));
}

Bson bytes_of(const bson_t* doc) {
  const auto* data = bson_get_data(doc);
  return Bson(data, data + doc->len);
}

// {_id: {$in: [...]}} from journaled {_id: value} documents.
void append_in(bson_t* filter, const std::vector<Bson>& ids) {
  bson_t id, in;
  bson_append_document_begin(filter, "_id", -1, &id);
  bson_append_array_begin(&id, "$in", -1, &in);
  std::uint32_t i = 0;
  for (const auto& wrapped : ids) {
    bson_t doc;
    bson_iter_t it;
    if (!bson_view(wrapped, &doc) || !bson_iter_init_find(&it, &doc, "_id")) {
      continue;
    }
    const std::string key = std::to_string(i++);
    bson_append_iter(&in, key.c_str(), -1, &it);
  }
  bson_append_array_end(&id, &in);
  bson_append_document_end(filter, &id);
}

// The documents now in `ns` among `ids`, keyed by their {_id} bytes.
bool read_current(mongoc_collection_t* coll, const std::vector<Bson>& ids,
                  std::map<Bson, Bson>& out, std::string& error) {
  for (std::size_t start = 0; start < ids.size(); start += kIdsPerRead) {
    const std::vector<Bson> chunk(
        ids.begin() + static_cast<std::ptrdiff_t>(start),
        ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), start + kIdsPerRead)));
    bson_t filter = BSON_INITIALIZER;
    append_in(&filter, chunk);
    mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(coll, &filter, nullptr, nullptr);
    const bson_t* doc = nullptr;
    while (mongoc_cursor_next(cursor, &doc)) {
      auto bytes = bytes_of(doc);
      if (auto id = document_id(bytes)) out.emplace(std::move(*id), std::move(bytes));
    }
    bson_error_t e;
    const bool failed = mongoc_cursor_error(cursor, &e);
    mongoc_cursor_destroy(cursor);
    bson_destroy(&filter);
    if (failed) {
      error = std::string("reading ") + mongoc_collection_get_name(coll) + " failed: " + e.message;
      return false;
    }
  }
  return true;
}

// Writes one step; "" when done, else why not.
std::string carry_out(mongoc_collection_t* coll, const RestoreStep& step) {
  bson_t doc, filter;
  if (!bson_view(step.document, &doc) || !bson_view(step.id, &filter)) {
    return "the journaled document is not BSON";
  }
  bson_error_t e;
  bool ok = false;
  if (step.action == RestoreAction::kInsert) {
    ok = mongoc_collection_insert_one(coll, &doc, nullptr, nullptr, &e);
  } else {
    bson_t reply;
    ok = mongoc_collection_replace_one(coll, &filter, &doc, nullptr, &reply, &e);
    bson_iter_t it;
    if (ok && bson_iter_init_find(&it, &reply, "matchedCount") && bson_iter_as_int64(&it) != 1) {
      ok = false;
      bson_set_error(&e, 0, 0, "the document was gone when it was replaced");
    }
    bson_destroy(&reply);
  }
  return ok ? "" : e.message;
}

}  // namespace

std::string id_text(const Bson& id) {
  bson_t doc;
  if (!bson_view(id, &doc)) return "(bad id)";
  char* text = bson_as_relaxed_extended_json(&doc, nullptr);
  std::string out = text ? text : "(bad id)";
  bson_free(text);
  return out;
}

RestoreOutcome restore_rows(const std::string& uri, const std::vector<Row>& rows,
                            const RestoreOptions& options) {
  init_driver();
  RestoreOutcome out;
  Client client = connect(uri, options.app_name, out.error);
  if (!client) return out;
  std::map<std::string, std::set<Bson>> ids;
  for (const auto& row : rows) ids[row.ns].insert(row.doc_id);
  CurrentDocuments current;
  for (const auto& [ns, set] : ids) {
    auto coll = collection_of(client.get(), ns);
    if (!read_current(coll.get(), {set.begin(), set.end()}, current[ns], out.error)) return out;
  }
  out.plan = plan_restore(rows, current, options.force);
  if (options.dry_run) return out;
  std::map<std::string, Collection> collections;
  for (const auto& step : out.plan.steps) {
    if (step.action != RestoreAction::kInsert && step.action != RestoreAction::kReplace) continue;
    auto& coll = collections[step.ns];
    if (!coll) coll = collection_of(client.get(), step.ns);
    if (auto why = carry_out(coll.get(), step); !why.empty()) {
      out.failures.push_back(step.ns + " " + id_text(step.id) + ": " + why);
      continue;
    }
    (step.action == RestoreAction::kInsert ? out.inserted : out.replaced)++;
    out.restored_rows.insert(out.restored_rows.end(), step.row_ids.begin(), step.row_ids.end());
  }
  return out;
}

std::string secret_restore_app_name() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device device;
  std::string out(kRestoreAppPrefix);
  for (int i = 0; i < 16; ++i) {
    const auto b = static_cast<unsigned>(device()) & 0xffu;
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace mongoguard::journal
