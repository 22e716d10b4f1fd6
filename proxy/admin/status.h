// What GET /api/status says about the configuration: the file, when it was
// loaded, how the last reload went, and what the decision log read back
// from the audit file at start-up. Kept by the Server and touched on its
// main thread only, where reloads and the admin API run.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace mongoguard::proxy {

struct ReloadOutcome {
  std::chrono::system_clock::time_point at;
  bool ok = false;
  std::string why;                  // "SIGHUP", "file changed", "admin API"
  std::vector<std::string> errors;  // FILE:LINE:COL: message, one per entry
};

struct AdminStatus {
  std::string policy_file;  // empty: started without --config
  std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();
  std::chrono::system_clock::time_point loaded_at = started_at;  // the running configuration
  std::optional<ReloadOutcome> last_reload;
  std::size_t decisions_read_back = 0;  // records of the audit file's tail
  std::size_t audit_lines_skipped = 0;  // lines of it that were not records

  // `errors` as the reload gave them, one per line.
  void reloaded(bool ok, const std::string& errors, std::string why,
                std::chrono::system_clock::time_point now);
};

// "a\nb\n" -> {"a", "b"}: empty lines left out.
std::vector<std::string> error_lines(const std::string& errors);

}  // namespace mongoguard::proxy
