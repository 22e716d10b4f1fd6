#include "proxy/journal/entry.h"

#include <array>
#include <utility>

namespace mongoguard::journal {

namespace {

constexpr std::array<std::pair<Operation, const char*>, 5> kNames{{
    {Operation::kDelete, "delete"},
    {Operation::kUpdate, "update"},
    {Operation::kReplace, "replace"},
    {Operation::kFindAndModify, "findAndModify"},
    {Operation::kBulkWrite, "bulkWrite"},
}};

}  // namespace

const char* operation_name(Operation op) {
  for (const auto& [value, name] : kNames) {
    if (value == op) return name;
  }
  return "unknown";
}

std::optional<Operation> parse_operation(std::string_view name) {
  for (const auto& [value, text] : kNames) {
    if (name == text) return value;
  }
  return std::nullopt;
}

bool written_before(const Row& a, const Row& b) {
  return a.time_ms != b.time_ms ? a.time_ms < b.time_ms : a.id < b.id;
}

}  // namespace mongoguard::journal
