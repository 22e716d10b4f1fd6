// mongoguard ctl: the operator's command line over the admin HTTP API.
//
//   mongoguard ctl [--admin URL] [--token-file F] [--as NAME] [--json] COMMAND
//     holds | approve ID | reject ID | approve-all NAME | reject-all NAME
//     breakers | grant NAME (--documents N | --minutes T) | reset NAME
//     decisions [--limit N] | reload
//     journal [export] [--ns NS] [--since T] [--until T] [--rule R] [--hold ID] [--out DIR]
//     restore --ns NS [--since T] [--until T] [--hold ID] [--to URI] [--dry-run] [--force]
//     ready | alive   (probes: /readyz, /healthz)
//
// Exit 0 on success, 1 when the API refused (its message is printed) or
// could not be reached, 2 on a usage error.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cli/options.h"

namespace mongoguard::tools {

int ctl_main(int argc, char** argv);

// What `ctl` was asked: its command line, with the environment's defaults.
struct CtlArgs {
  std::string admin = "http://127.0.0.1:9901";
  // --token-file, else $MONGOGUARD_ADMIN_TOKEN_FILE, else this:
  std::string token_file = "/etc/mongoguard/admin.token";
  std::string ca_file;  // --ca-file, $MONGOGUARD_ADMIN_CA_FILE
  std::string as;       // --as, $USER
  std::string reason;   // --reason: why, for decisions
  bool json = false;
  std::string command;  // holds, approve, ...
  std::string name;     // the hold's ID or the breaker's NAME, for the commands that take one
  std::optional<std::string> documents, minutes, limit;
  // journal and restore: which entries, and where a restore writes.
  std::string journal_action;  // "" (list) or "export"
  std::string ns, since, until, rule, hold, to, out;
  bool dry_run = false;
  bool force = false;
};

// argv[0] is "ctl". kError leaves the one-line message in `error`.
proxy::CommandLine parse_ctl(int argc, const char* const* argv, CtlArgs& args, std::string& error);

// The API call a parsed command makes.
struct CtlRequest {
  bool post = false;
  std::string path;  // from the endpoint's root: /api/...
  std::string body;  // JSON, for a POST
};
std::optional<CtlRequest> build_request(const CtlArgs& args, std::string& error);

// One API call: 0 with the answer's JSON in `data`; else the exit code, the
// reason printed (1: refused or unreachable, 2: bad usage).
int ctl_api(const CtlArgs& args, bool post, const std::string& path, const std::string& body,
            nlohmann::json& data);
// journal and restore (ctl_journal.cc); exit code as above, and 1 for a
// restore that left conflicts or failures.
int run_journal_command(const CtlArgs& args);
// Client-chosen text for a terminal: control characters as \xNN.
std::string printable(std::string_view text);

// Helpers, exposed for tests.
// Resolves a breaker NAME against the names there are: itself, or the one
// name it is a prefix of (`name` becomes it). Else a message naming the
// candidates or the closest names; "" when resolved.
std::string match_breaker(const std::vector<std::string>& names, std::string& name);
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(std::string_view in);
// Left-aligned columns, two spaces apart, a header row first.
std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace mongoguard::tools
