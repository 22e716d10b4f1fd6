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

#include <string>
#include <string_view>
#include <vector>

namespace mongoguard::tools {

int ctl_main(int argc, char** argv);

// Helpers, exposed for tests.
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(std::string_view in);
// Left-aligned columns, two spaces apart, a header row first.
std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace mongoguard::tools
