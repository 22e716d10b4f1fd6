// Whole-collection and whole-database commands: drop, dropDatabase,
// dropIndexes, convertToCapped, emptycapped, dropSearchIndex,
// renameCollection, and TTL changes through collMod/createIndexes.
#include "policy/classify_internal.h"

namespace mongoguard::policy::detail {
namespace {

std::optional<Operation> collection_ddl_operation(std::string_view command) {
  if (command == "drop") return Operation::kDrop;
  if (command == "dropIndexes" || command == "deleteIndexes") return Operation::kDropIndexes;
  if (command == "convertToCapped") return Operation::kConvertToCapped;
  if (command == "emptycapped" || command == "captrunc") return Operation::kEmptycapped;
  if (command == "dropSearchIndex") return Operation::kDropSearchIndex;
  return std::nullopt;
}

// True when `doc` has expireAfterSeconds (any value: setting, lowering and
// even a malformed value are all for policy to judge).
bool has_expire_after(const bson_t& doc) {
  bson_iter_t it;
  return find(&doc, "expireAfterSeconds", &it);
}

std::string_view database_of(std::string_view ns) { return ns.substr(0, ns.find('.')); }

}  // namespace

void classify_collection_ddl(const CommandInput& in, Classification& out) {
  if (in.command == "cloneCollectionAsCapped") {
    // {cloneCollectionAsCapped: "from", toCollection: "to", size}: writes a
    // capped copy into `to`, keeping only what fits. Judged on the
    // collection written, like convertToCapped, whether or not it exists
    // (servers differ on whether an existing one is refused).
    bson_iter_t it;
    const auto to = find(in.body, "toCollection", &it) ? as_string(&it) : std::nullopt;
    const std::size_t t =
        out.whole(Operation::kConvertToCapped, make_ns(in.database, to.value_or("*")));
    if (!to) out.info.targets[t].ns = make_ns(in.database, "*");
    return;
  }
  // dropIndexes judges every index spec alike ("*", a name, a key pattern,
  // a list): rules decide, not the shape.
  const auto op = collection_ddl_operation(in.command);
  if (!op) return;
  out.whole(*op, make_ns(in.database, first_string(in.body)));
}

void classify_drop_database(const CommandInput& in, Classification& out) {
  out.whole(Operation::kDropDatabase, make_ns(in.database, "*"));
}

// renameCollection: {renameCollection: "db.from", to: "db2.to", dropTarget}.
//
// Every rename is classified, not only the destructive forms: to the
// application a renamed collection has disappeared just as if dropped, and a
// rule can always choose to allow plain renames. Both namespaces become
// targets (source first), so a rule protecting either one sees the rename.
// With dropTarget the target namespace's collection is dropped, so that
// target also answers to "drop"; a rename across databases copies the data
// and then drops the source, so the source target answers to "drop" too.
void classify_rename(const CommandInput& in, Classification& out) {
  const std::string_view from = first_string(in.body);
  bson_iter_t it;
  std::string_view to;
  if (find(in.body, "to", &it)) to = as_string(&it).value_or(std::string_view{});
  const bool drop_target = find(in.body, "dropTarget", &it) && truthy(&it);
  const bool cross_db = database_of(from) != database_of(to);

  const std::size_t s = out.whole(Operation::kRenameCollection, from);
  if (cross_db) out.info.targets[s].matches.add(Operation::kDrop);
  const std::size_t t = out.whole(Operation::kRenameCollection, to);
  if (drop_target) out.info.targets[t].matches.add(Operation::kDrop);
}

// A TTL index deletes every document older than expireAfterSeconds as soon
// as it exists or is lowered: collMod of an index (or of a time-series or
// clustered collection's own expireAfterSeconds), or createIndexes with a
// TTL index. collMod resizing a capped collection (cappedSize, cappedMax)
// deletes the oldest documents that no longer fit; whether the new size is
// smaller is not known here, so every resize is judged.
void classify_ttl(const CommandInput& in, Classification& out) {
  const std::string ns = make_ns(in.database, first_string(in.body));
  bool ttl = false;
  if (in.command == "collMod") {
    bson_iter_t it;
    bson_t index;
    ttl = has_expire_after(*in.body) ||
          (find(in.body, "index", &it) && as_document(&it, &index) && has_expire_after(index));
    if (find(in.body, "cappedSize", &it) || find(in.body, "cappedMax", &it)) {
      const std::size_t t = out.whole(Operation::kCappedResize, ns);
      out.info.targets[t].matches.add(Operation::kConvertToCapped);
    }
  } else {
    for_each_in_array(in, "indexes",
                      [&](const bson_t& spec) { ttl = ttl || has_expire_after(spec); });
  }
  if (ttl) out.whole(Operation::kTtlChange, ns);
}

}  // namespace mongoguard::policy::detail
