// The admin token file: one secret, read the same way by the proxy (which
// checks bearer tokens against it) and by `mongoguard ctl` (which sends it).
//
// The rule: the file holds the token on one line. Whitespace around it is
// ignored (the newline `echo` or an editor adds, a CRLF, blank lines before
// or after). A file that cannot be read, an empty (or all-blank) file, and a
// file with more than one non-empty line are refused: a second line is a
// mistake to report (two tokens pasted in, a comment), not text to guess about.
// A UTF-8 byte order mark at the start is ignored. The token itself must be
// one word of printable ASCII (no byte a header could be split on) and at
// least kMinTokenLength characters: a short token is guessed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mongoguard::config {

inline constexpr std::size_t kMinTokenLength = 16;

struct TokenFile {
  std::string token;  // empty whenever error is set
  std::string error;  // one line naming the file; empty = ok

  bool ok() const { return error.empty(); }
};

// `kind` names the secret in errors: "token", or "password" for the fleet's
// Redis password file, which follows the same rule.
TokenFile read_token_file(const std::string& path, std::string_view kind = "token");

// Every token file the admin endpoint would use (the shared one: `shared`,
// and each named operator's), read now: one line per problem (a file that
// cannot be read or is empty, two operators with the same token). The
// proxy refuses to start, or a reload, while there is any.
struct OperatorTokens {
  std::string name;  // "" for the shared admin.token_file
  std::string path;
};
std::vector<std::string> token_file_problems(const std::vector<OperatorTokens>& files);

// The rule applied to the file's text; `path` only names it in errors.
TokenFile parse_token_text(std::string_view text, const std::string& path,
                           std::string_view kind = "token");

}  // namespace mongoguard::config
