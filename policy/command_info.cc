// The operations vocabulary and the hot-path check for inspected commands.
#include "policy/command_info.h"

#include <array>

#include "bson/redact.h"
#include "policy/classify_internal.h"
#include "policy/command_catalogue.h"

namespace mongoguard::policy {
namespace {

constexpr std::array<const char*, kOperationCount> kOperationNames = {
    "delete",           "update",       "replace",      "findAndModify",
    "bulkWrite",        "drop",         "dropDatabase", "dropIndexes",
    "renameCollection", "aggregateOut", "mapReduceOut", "convertToCapped",
    "emptycapped",      "ttlChange",    "applyOps",     "dropSearchIndex",
    "cappedResize",     "dropUser",     "dropRole",     "userAdmin",
    "shutdown",         "clusterAdmin", "sharding",
};
static_assert(static_cast<int>(Operation::kSharding) + 1 == kOperationCount);

}  // namespace

const char* operation_name(Operation op) {
  const auto i = static_cast<std::size_t>(op);
  return i < kOperationNames.size() ? kOperationNames[i] : "unknown";
}

std::optional<Operation> parse_operation(std::string_view name) {
  for (std::size_t i = 0; i < kOperationNames.size(); ++i) {
    if (name == kOperationNames[i]) return static_cast<Operation>(i);
  }
  return std::nullopt;
}

bool is_inspected_command(std::string_view c) {
  return command_kind(c) == CommandKind::kDestructive;
}

namespace {

template <class Render>
std::string render_filter(const std::vector<std::uint8_t>& bytes, Render render) {
  if (bytes.empty()) return {};
  bson_t doc;
  if (!bson_init_static(&doc, bytes.data(), bytes.size())) return {};
  return render(&doc);
}

// The value of `key` in the BSON document `bytes`, as JSON ("" when absent).
std::string field_json(const std::vector<std::uint8_t>& bytes, const char* key) {
  bson_t doc;
  bson_iter_t it;
  if (bytes.empty() || !bson_init_static(&doc, bytes.data(), bytes.size()) ||
      !bson_iter_init_find(&it, &doc, key)) {
    return {};
  }
  return detail::value_json(&it);
}

}  // namespace

std::string CommandInfo::collation_json() const { return field_json(first_options, "collation"); }

std::string CommandInfo::hint_json() const { return field_json(first_options, "hint"); }

std::string Target::filter_redacted() const {
  return render_filter(filter_bson, [](const bson_t* d) { return wire::redacted_json(d); });
}

std::string Target::filter_json() const {
  return render_filter(filter_bson, [](const bson_t* d) { return wire::relaxed_json(d); });
}

}  // namespace mongoguard::policy
