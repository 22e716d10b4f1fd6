// The admin token file: one secret, read the same way by the proxy (which
// checks bearer tokens against it) and by `mongoguard ctl` (which sends it).
//
// The rule: the file holds the token on one line. Whitespace around it is
// ignored (the newline `echo` or an editor adds, a CRLF, blank lines before
// or after). A file that cannot be read, an empty (or all-blank) file, and a
// file with more than one non-empty line are refused: a second line is a
// mistake to report (two tokens pasted in, a comment), not text to guess about.
#pragma once

#include <string>
#include <string_view>

namespace mongoguard::config {

struct TokenFile {
  std::string token;  // empty whenever error is set
  std::string error;  // one line naming the file; empty = ok

  bool ok() const { return error.empty(); }
};

TokenFile read_token_file(const std::string& path);

// The rule applied to the file's text; `path` only names it in errors.
TokenFile parse_token_text(std::string_view text, const std::string& path);

}  // namespace mongoguard::config
