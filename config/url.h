// One reader for the URLs mongoguard is given: mongodb:// upstreams,
// http(s):// webhooks and admin endpoints, redis:// fleet servers, and the
// bare "host:port" of listen addresses.
//
// It splits "scheme://[userinfo@]host[:port][/path][?query][#fragment]"
// (RFC 3986's generic syntax) and checks only that structure. Nothing is
// percent-decoded. What each scheme accepts (credentials, ports, paths) is
// its reader's business: proxy/net/endpoint.cc, proxy/observe/json.cc and
// config.cc, which turn these parts into their own values and messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mongoguard::config {

// "host", "host:port", "[v6]", "[v6]:port".
struct HostAndPort {
  std::string host;                 // brackets removed: "[::1]" → "::1"
  bool bracketed = false;           // written as [addr]
  std::optional<std::string> port;  // after the ':', as written (may be empty)
};

// Splits at the ':' after a bracketed address, else at the last ':' (so an
// unbracketed host may still hold colons: the caller decides). Fails only
// on an unclosed '[' or text after ']' that is not ":port".
std::optional<HostAndPort> split_host_port(std::string_view text, std::string& error);

struct Url : HostAndPort {
  std::string scheme;                   // as written, "" when there is no "://"
  std::optional<std::string> userinfo;  // before the '@' that ends it
  std::string hostport;                 // the authority without the userinfo, as written
  std::string path;                     // from the first '/' on ("" when none)
  std::optional<std::string> query;     // after the first '?'
  std::optional<std::string> fragment;  // after the first '#'

  // The userinfo split at its first ':': "user:secret" → user "user",
  // password "secret"; without a ':' it is all password (redis://secret@h).
  std::string user() const;
  std::string password() const;
};

struct UrlSyntax {
  // The userinfo runs to the last '@' of the whole URL rather than of the
  // authority, so that passwords may hold '/', '?' and '#' unescaped, as
  // generated Redis passwords do.
  bool userinfo_to_last_at = false;
};

// The text before the first "://", as written; "" when there is none.
std::string_view url_scheme(std::string_view text);

// Text without "://" is read from the authority on ("db1:27017/app").
std::optional<Url> parse_url(std::string_view text, std::string& error, UrlSyntax syntax = {});

// `url` fit for a log line: a password in its userinfo (everything from
// "://" to the last '@', after the user name) becomes "***", and with
// `hide_path` so do its path and query (a webhook's path is often its
// secret). Text that is no URL comes back as it is.
std::string redacted_url(std::string_view url, bool hide_path = false);

// A port of only digits, at most `max_digits` of them, in [min, 65535].
std::optional<std::uint16_t> parse_port(std::string_view text, unsigned min = 1,
                                        std::size_t max_digits = 5);

}  // namespace mongoguard::config
