// The operations vocabulary and the hot-path check for inspected commands.
#include "policy/command_info.h"

#include <array>

#include "bson/redact.h"

namespace mongoguard::policy {
namespace {

constexpr std::array<const char*, kOperationCount> kOperationNames = {
    "delete",           "update",       "replace",      "findAndModify",
    "bulkWrite",        "drop",         "dropDatabase", "dropIndexes",
    "renameCollection", "aggregateOut", "mapReduceOut", "convertToCapped",
    "emptycapped",      "ttlChange",    "applyOps",     "dropSearchIndex",
};
static_assert(static_cast<int>(Operation::kDropSearchIndex) + 1 == kOperationCount);

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

// Runs for every command a client sends, so it dispatches on the length
// first and compares against at most three names of that length.
bool is_inspected_command(std::string_view c) {
  switch (c.size()) {
    case 4:
      return c == "drop";
    case 6:
      return c == "delete" || c == "update";
    case 7:
      return c == "collMod";
    case 8:
      return c == "applyOps";
    case 9:
      return c == "bulkWrite" || c == "aggregate" || c == "mapReduce" || c == "mapreduce";
    case 11:
      return c == "dropIndexes" || c == "emptycapped";
    case 12:
      return c == "dropDatabase";
    case 13:
      return c == "findAndModify" || c == "findandmodify" || c == "deleteIndexes" ||
             c == "createIndexes";
    case 15:
      return c == "convertToCapped" || c == "dropSearchIndex";
    case 16:
      return c == "renameCollection";
    default:
      return false;
  }
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
