#include "proxy/journal/capture.h"

#include <cstring>
#include <string_view>

namespace mongoguard::journal {

namespace {

Bson bytes_of(const bson_t* doc) {
  const auto* data = bson_get_data(doc);
  return Bson(data, data + doc->len);
}

Bson empty_document() {
  bson_t empty = BSON_INITIALIZER;
  auto out = bytes_of(&empty);
  bson_destroy(&empty);
  return out;
}

bool field(const bson_t* doc, const char* key, bson_iter_t* it) {
  return bson_iter_init_find(it, doc, key);
}

bool sub_document(const bson_iter_t* it, bson_t* out) {
  if (!BSON_ITER_HOLDS_DOCUMENT(it)) return false;
  std::uint32_t len = 0;
  const std::uint8_t* data = nullptr;
  bson_iter_document(it, &len, &data);
  return bson_init_static(out, data, len);
}

std::string_view utf8(const bson_iter_t* it) {
  if (!BSON_ITER_HOLDS_UTF8(it)) return {};
  std::uint32_t len = 0;
  const char* s = bson_iter_utf8(it, &len);
  return {s, len};
}

bool truthy(const bson_t* doc, const char* key) {
  bson_iter_t it;
  return field(doc, key, &it) && bson_iter_as_bool(&it);
}

// What one statement asks for, before it becomes a find.
struct Shape {
  const char* filter_key = "q";
  bool single = false;
  bool removes = false;
  Operation op = Operation::kDelete;
  bool with_sort = false;
};

// Builds reads from one command; stops at the first error.
class Planner {
 public:
  Planner(const wire::Request& request, const std::set<std::string>& namespaces,
          std::int64_t max_documents)
      : request_(request), namespaces_(namespaces), max_documents_(max_documents) {}

  CapturePlan run() {
    if (!request_.body ||
        request_.effective_opcode != static_cast<std::int32_t>(wire::OpCode::kMsg)) {
      return fail("a legacy write (OP_DELETE, OP_UPDATE, OP_QUERY) cannot be journaled");
    }
    if (!request_.body->as_bson(&body_)) return fail("the command could not be read");
    if (truthy(&body_, "startTransaction") || field(&body_, "autocommit", &it_)) {
      return fail(
          "it runs inside a multi-document transaction, which the journal's read cannot join");
    }
    db_ = std::string(request_.database);
    const std::string_view command = request_.command;
    if (command == "delete") {
      statements("deletes", [this](const bson_t& s) { delete_statement(s); });
    } else if (command == "update") {
      statements("updates", [this](const bson_t& s) { update_statement(s); });
    } else if (command == "findAndModify" || command == "findandmodify") {
      find_and_modify();
    } else if (command == "bulkWrite") {
      bulk_write();
    } else {
      return fail("the journal cannot read what " + std::string(command) + " affects");
    }
    return std::move(plan_);
  }

 private:
  CapturePlan fail(std::string why) {
    plan_.reads.clear();
    if (plan_.error.empty()) plan_.error = std::move(why);
    return std::move(plan_);
  }
  void error(std::string why) {
    if (plan_.error.empty()) plan_.error = std::move(why);
  }

  std::string collection() {
    bson_iter_t it;
    if (!field(&body_, request_.command.data(), &it)) return {};
    return std::string(utf8(&it));
  }

  // Each statement of `key`, from the body's array and the OP_MSG sequence.
  template <typename Fn>
  void statements(const char* key, Fn&& fn) {
    bson_iter_t it, child;
    if (field(&body_, key, &it) && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &child)) {
      while (bson_iter_next(&child) && plan_.error.empty()) {
        bson_t stmt;
        if (!sub_document(&child, &stmt)) return error(std::string(key) + " holds a non-document");
        fn(stmt);
      }
    }
    if (!request_.msg) return;
    if (const auto* seq = request_.msg->sequence(key)) {
      for (const auto& doc : seq->docs()) {
        bson_t stmt;
        if (!plan_.error.empty()) return;
        if (!doc.as_bson(&stmt)) return error(std::string(key) + " holds an unreadable document");
        fn(stmt);
      }
    }
  }

  void delete_statement(const bson_t& s) {
    bson_iter_t it;
    Shape shape;
    shape.single = field(&s, "limit", &it) && bson_iter_as_int64(&it) == 1;
    shape.removes = true;
    add(collection_ns(), s, shape);
  }

  static Operation update_kind(const bson_t& s, const char* key) {
    bson_iter_t it, child;
    if (!field(&s, key, &it) || !BSON_ITER_HOLDS_DOCUMENT(&it)) return Operation::kUpdate;
    if (!bson_iter_recurse(&it, &child) || !bson_iter_next(&child)) return Operation::kReplace;
    return bson_iter_key(&child)[0] == '$' ? Operation::kUpdate : Operation::kReplace;
  }

  void update_statement(const bson_t& s) {
    Shape shape;
    shape.single = !truthy(&s, "multi");
    shape.op = update_kind(s, "u");
    shape.with_sort = shape.single;  // updateOne's sort (MongoDB 8.0): the document it picks
    add(collection_ns(), s, shape);
  }

  void find_and_modify() {
    Shape shape;
    shape.filter_key = "query";
    shape.single = true;
    shape.removes = truthy(&body_, "remove");
    shape.op = Operation::kFindAndModify;
    shape.with_sort = true;
    add(collection_ns(), body_, shape);
  }

  void bulk_write() {
    std::vector<std::string> ns_info;
    statements("nsInfo", [&](const bson_t& s) {
      bson_iter_t it;
      ns_info.emplace_back(field(&s, "ns", &it) ? std::string(utf8(&it)) : std::string());
    });
    statements("ops", [&](const bson_t& s) {
      bson_iter_t it;
      if (!bson_iter_init(&it, &s) || !bson_iter_next(&it)) return error("an empty bulkWrite op");
      const std::string_view kind = bson_iter_key(&it);
      if (kind == "insert") return;
      const auto index = bson_iter_as_int64(&it);
      if (index < 0 || static_cast<std::size_t>(index) >= ns_info.size()) {
        return error("a bulkWrite op names no namespace of nsInfo");
      }
      Shape shape;
      shape.filter_key = "filter";
      shape.single = !truthy(&s, "multi");
      if (kind == "delete") {
        shape.removes = true;
      } else if (kind == "update") {
        shape.op = update_kind(s, "updateMods");
      } else {
        return error("a bulkWrite op of kind '" + std::string(kind) + "'");
      }
      add(ns_info[static_cast<std::size_t>(index)], s, shape);
    });
  }

  std::string collection_ns() { return db_ + "." + collection(); }

  void add(const std::string& ns, const bson_t& s, const Shape& shape) {
    if (!namespaces_.count(ns)) return;
    CaptureRead read;
    read.ns = ns;
    read.op = request_.command == "bulkWrite" ? Operation::kBulkWrite : shape.op;
    read.single = shape.single;
    read.removes = shape.removes;
    bson_iter_t it;
    bson_t filter;
    if (field(&s, shape.filter_key, &it) && sub_document(&it, &filter)) {
      read.filter = bytes_of(&filter);
    } else if (field(&s, shape.filter_key, &it)) {
      return error(std::string(shape.filter_key) + " is not a document");
    } else {
      read.filter = empty_document();
    }
    read.find = find_command(read, s, shape);
    plan_.reads.push_back(std::move(read));
  }

  Bson find_command(const CaptureRead& read, const bson_t& s, const Shape& shape) {
    bson_t find = BSON_INITIALIZER;
    const auto dot = read.ns.find('.');
    const std::string coll = read.ns.substr(dot + 1);
    const std::string db = read.ns.substr(0, dot);
    bson_append_utf8(&find, "find", -1, coll.data(), static_cast<int>(coll.size()));
    bson_t filter;
    if (!bson_view(read.filter, &filter)) bson_init(&filter);
    bson_append_document(&find, "filter", -1, &filter);
    const std::int64_t limit = shape.single ? 1 : max_documents_ + 1;
    bson_append_int64(&find, "limit", -1, limit);
    bson_append_int64(&find, "batchSize", -1, limit);
    // One document at most: no cursor left open for a getMore to close.
    if (shape.single) bson_append_bool(&find, "singleBatch", -1, true);
    copy(&s, shape.with_sort ? "sort" : nullptr, &find);
    copy(&s, "collation", &find);
    copy(&s, "hint", &find);
    copy(&body_, "let", &find);
    copy(&body_, "lsid", &find);
    bson_append_utf8(&find, "$db", -1, db.data(), static_cast<int>(db.size()));
    auto out = bytes_of(&find);
    bson_destroy(&find);
    return out;
  }

  static void copy(const bson_t* from, const char* key, bson_t* to) {
    bson_iter_t it;
    if (key && field(from, key, &it)) bson_append_iter(to, key, -1, &it);
  }

  const wire::Request& request_;
  const std::set<std::string>& namespaces_;
  const std::int64_t max_documents_;
  bson_t body_;
  bson_iter_t it_;
  std::string db_;
  CapturePlan plan_;
};

}  // namespace

CapturePlan plan_capture(const wire::Request& request, const std::set<std::string>& namespaces,
                         std::int64_t max_documents) {
  return Planner(request, namespaces, max_documents).run();
}

CaptureBatch read_capture_reply(const bson_t* reply) {
  CaptureBatch out;
  bson_iter_t it;
  if (!field(reply, "ok", &it) || bson_iter_as_double(&it) != 1.0) {
    out.error = field(reply, "errmsg", &it) ? std::string(utf8(&it)) : "the read failed";
    if (out.error.empty()) out.error = "the read failed";
    return out;
  }
  bson_t cursor;
  if (!field(reply, "cursor", &it) || !sub_document(&it, &cursor)) {
    out.error = "the read's reply has no cursor";
    return out;
  }
  bson_iter_t batch, doc;
  if ((!field(&cursor, "firstBatch", &batch) && !field(&cursor, "nextBatch", &batch)) ||
      !BSON_ITER_HOLDS_ARRAY(&batch) || !bson_iter_recurse(&batch, &doc)) {
    out.error = "the read's reply has no batch";
    return out;
  }
  while (bson_iter_next(&doc)) {
    bson_t d;
    if (!sub_document(&doc, &d)) {
      out.error = "the read's batch holds a non-document";
      return out;
    }
    out.documents.push_back(bytes_of(&d));
  }
  if (field(&cursor, "id", &it)) out.cursor = bson_iter_as_int64(&it);
  return out;
}

namespace {

void append_lsid(const CaptureRead& read, bson_t* to) {
  bson_t find;
  bson_iter_t it;
  if (bson_view(read.find, &find) && field(&find, "lsid", &it)) {
    bson_append_iter(to, "lsid", -1, &it);
  }
}

std::pair<std::string, std::string> split_ns(const std::string& ns) {
  const auto dot = ns.find('.');
  return {ns.substr(0, dot), ns.substr(dot + 1)};
}

// _id: {<op>: [the ids' values]}, from ids wrapped as {_id: value}.
void append_id_set(bson_t* to, const char* op, const std::vector<Bson>& ids) {
  bson_t id, set;
  bson_append_document_begin(to, "_id", -1, &id);
  bson_append_array_begin(&id, op, -1, &set);
  std::uint32_t i = 0;
  for (const auto& one : ids) {
    bson_t wrapped;
    bson_iter_t it;
    if (!bson_view(one, &wrapped) || !field(&wrapped, "_id", &it)) {
      continue;
    }
    const std::string key = std::to_string(i++);
    bson_append_iter(&set, key.c_str(), -1, &it);
  }
  bson_append_array_end(&id, &set);
  bson_append_document_end(to, &id);
}

}  // namespace

Bson capture_preview(const CaptureRead& read, std::int64_t n) {
  bson_t find;
  bson_iter_t it;
  if (!bson_view(read.find, &find) || !bson_iter_init(&it, &find)) return read.find;
  bson_t cmd = BSON_INITIALIZER;
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    if (key == "limit" || key == "batchSize" || key == "singleBatch") continue;
    bson_append_iter(&cmd, bson_iter_key(&it), -1, &it);
  }
  const std::int64_t limit = read.single ? 1 : n;
  bson_append_int64(&cmd, "limit", -1, limit);
  bson_append_int64(&cmd, "batchSize", -1, limit);
  bson_append_bool(&cmd, "singleBatch", -1, true);
  auto out = bytes_of(&cmd);
  bson_destroy(&cmd);
  return out;
}

bool bson_view(const Bson& bytes, bson_t* out) {
  return bytes.size() >= 5 && bson_init_static(out, bytes.data(), bytes.size());
}

Bson capture_get_more(const CaptureRead& read, std::int64_t cursor) {
  const auto [db, coll] = split_ns(read.ns);
  bson_t cmd = BSON_INITIALIZER;
  bson_append_int64(&cmd, "getMore", -1, cursor);
  bson_append_utf8(&cmd, "collection", -1, coll.data(), static_cast<int>(coll.size()));
  append_lsid(read, &cmd);
  bson_append_utf8(&cmd, "$db", -1, db.data(), static_cast<int>(db.size()));
  auto out = bytes_of(&cmd);
  bson_destroy(&cmd);
  return out;
}

Bson capture_after_find(const CaptureRead& read, const std::vector<Bson>& ids) {
  const auto [db, coll] = split_ns(read.ns);
  bson_t cmd = BSON_INITIALIZER;
  bson_append_utf8(&cmd, "find", -1, coll.data(), static_cast<int>(coll.size()));
  bson_t filter;
  bson_append_document_begin(&cmd, "filter", -1, &filter);
  append_id_set(&filter, "$in", ids);
  bson_append_document_end(&cmd, &filter);
  const auto n = static_cast<std::int64_t>(ids.size());
  bson_append_int64(&cmd, "limit", -1, n);
  bson_append_int64(&cmd, "batchSize", -1, n);
  append_lsid(read, &cmd);
  bson_append_utf8(&cmd, "$db", -1, db.data(), static_cast<int>(db.size()));
  auto out = bytes_of(&cmd);
  bson_destroy(&cmd);
  return out;
}

Bson capture_excluding(const CaptureRead& read, const std::vector<Bson>& ids) {
  bson_t find, original;
  bson_iter_t it;
  if (ids.empty() || !bson_view(read.find, &find) || !bson_iter_init(&it, &find)) {
    return read.find;
  }
  if (!bson_view(read.filter, &original)) bson_init(&original);
  bson_t cmd = BSON_INITIALIZER;
  while (bson_iter_next(&it)) {
    if (std::string_view(bson_iter_key(&it)) != "filter") {
      bson_append_iter(&cmd, bson_iter_key(&it), -1, &it);
      continue;
    }
    bson_t filter, all, exclude;
    bson_append_document_begin(&cmd, "filter", -1, &filter);
    bson_append_array_begin(&filter, "$and", -1, &all);
    bson_append_document(&all, "0", -1, &original);
    bson_append_document_begin(&all, "1", -1, &exclude);
    append_id_set(&exclude, "$nin", ids);
    bson_append_document_end(&all, &exclude);
    bson_append_array_end(&filter, &all);
    bson_append_document_end(&cmd, &filter);
  }
  auto out = bytes_of(&cmd);
  bson_destroy(&cmd);
  return out;
}

std::optional<Bson> document_id(const Bson& document) {
  bson_t doc;
  bson_iter_t it;
  if (!bson_view(document, &doc) || !field(&doc, "_id", &it)) {
    return std::nullopt;
  }
  bson_t wrapped = BSON_INITIALIZER;
  bson_append_iter(&wrapped, "_id", -1, &it);
  auto out = bytes_of(&wrapped);
  bson_destroy(&wrapped);
  return out;
}

}  // namespace mongoguard::journal
