// Reading the audit file back at start-up, so that the decision log (the
// page's "Recent decisions", GET /api/decisions) survives a restart.
//
// The read is bounded from the end of the file: however large the file has
// grown, at most `max_bytes` are read, in chunks, newest first, until
// `max_records` records are found. Lines that are not records (not a JSON
// object with a readable `time`: a torn last line, an edited file) are
// skipped and counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mongoguard::proxy {

struct AuditTail {
  std::vector<std::string> records;  // oldest first, each one line as written
  std::size_t skipped = 0;           // lines read that are not records
  bool whole_file = false;           // every line of the file was read
  bool missing = false;              // there is no such file (yet)
  std::string error;                 // set when the file could not be read
};

AuditTail read_audit_tail(const std::string& path, std::size_t max_records = 500,
                          std::size_t max_bytes = 16u << 20);

// A record's `time` in milliseconds since the epoch. Accepts what audit
// records have carried: a number (seconds, or milliseconds when it is
// larger than any date in seconds), an ISO-8601 string
// ("2026-12-03T12:51:21.123Z", or with a +hh:mm offset), and extended JSON
// ({"$date": string | number | {"$numberLong": "..."}}). nullopt otherwise.
std::optional<std::int64_t> audit_time_ms(const nlohmann::json& time);

}  // namespace mongoguard::proxy
