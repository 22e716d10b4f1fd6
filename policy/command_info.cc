// The operations vocabulary and the hot-path check for inspected commands.
#include "policy/command_info.h"

#include <array>

#include "bson/redact.h"
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

}  // namespace

std::string Target::filter_redacted() const {
  return render_filter(filter_bson, [](const bson_t* d) { return wire::redacted_json(d); });
}

std::string Target::filter_json() const {
  return render_filter(filter_bson, [](const bson_t* d) { return wire::relaxed_json(d); });
}

}  // namespace mongoguard::policy
