#include "config/token_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mongoguard::config {

namespace {

constexpr std::string_view kBlank = " \t\r\n\f\v";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(kBlank);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kBlank) - first + 1);
}

TokenFile refused(std::string message) { return TokenFile{{}, std::move(message)}; }

}  // namespace

TokenFile parse_token_text(std::string_view text, const std::string& path, std::string_view kind) {
  const std::string what(kind);
  // A UTF-8 byte order mark (some editors write one) is not part of it.
  if (text.substr(0, 3) == "\xef\xbb\xbf") text.remove_prefix(3);
  std::string_view token;
  std::size_t lines = 0;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const auto line = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty()) continue;
    if (++lines > 1) {
      return refused("the " + what + " file " + path +
                     " has more than one non-empty line; it must hold the " + what + " alone");
    }
    token = line;
  }
  if (token.empty()) return refused("the " + what + " file " + path + " is empty");
  for (const unsigned char c : token) {
    if (c <= 0x20 || c >= 0x7f) {
      return refused("the " + what + " file " + path +
                     " holds a space, a control character or a byte that is not printable "
                     "ASCII; a " +
                     what + " is one word of printable ASCII");
    }
  }
  if (token.size() < kMinTokenLength) {
    return refused("the " + what + " in " + path + " is " + std::to_string(token.size()) +
                   " characters long; a " + what + " must have at least " +
                   std::to_string(kMinTokenLength) +
                   " (make one with: head -c 24 /dev/urandom | base64)");
  }
  return TokenFile{std::string(token), {}};
}

TokenFile read_token_file(const std::string& path, std::string_view kind) {
  const std::string cannot = "cannot read the " + std::string(kind) + " file " + path + ": ";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return refused(cannot + "it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return refused(cannot + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return refused(cannot + std::strerror(errno));
  return parse_token_text(text.str(), path, kind);
}

std::vector<std::string> token_file_problems(const std::vector<OperatorTokens>& files) {
  std::vector<std::string> problems;
  std::vector<std::pair<std::string, std::string>> seen;  // token, whose
  for (const auto& f : files) {
    const std::string whose = f.name.empty() ? "admin.token_file" : "operator " + f.name;
    auto read = read_token_file(f.path);
    if (!read.ok()) {
      problems.push_back(whose + ": " + read.error);
      continue;
    }
    for (const auto& [token, other] : seen) {
      if (token == read.token) {
        problems.push_back(whose + " has the same token as " + other + " (" + f.path +
                           "): each operator needs a token of their own");
      }
    }
    seen.emplace_back(read.token, whose);
  }
  return problems;
}

}  // namespace mongoguard::config
