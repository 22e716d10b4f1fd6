// mongoguard ctl: the operator's command line over the admin HTTP API.
//
//   mongoguard ctl [--admin URL] [--token-file F] [--as NAME] [--json] COMMAND
//     holds | approve ID | reject ID | approve-all NAME | reject-all NAME
//     breakers | grant NAME (--documents N | --minutes T) | reset NAME
//     decisions [--limit N] | reload
//
// Exit 0 on success, 1 when the API refused (its message is printed) or
// could not be reached, 2 on a usage error.
#pragma once

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
  bool json = false;
  std::string command;  // holds, approve, ...
  std::string name;     // the hold's ID or the breaker's NAME, for the commands that take one
  std::optional<std::string> documents, minutes, limit;
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

// Helpers, exposed for tests.
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(std::string_view in);
// Left-aligned columns, two spaces apart, a header row first.
std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace mongoguard::tools
