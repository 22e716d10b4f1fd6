// Host/port pairs as users write them: "127.0.0.1:27017", "[::1]:27017",
// "db.internal" (default port), and single-host mongodb:// URIs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mongoguard::proxy {

struct HostPort {
  std::string host;
  std::uint16_t port = 27017;

  std::string to_string() const;  // brackets IPv6 literals
};

// Parses "host[:port]" / "[v6]:port". Returns nullopt and fills `error`.
std::optional<HostPort> parse_host_port(std::string_view text, std::string& error,
                                        std::uint16_t default_port = 27017);

// Parses "mongodb://host[:port][/db][?options]" (or a bare host:port) naming
// exactly one server. Credentials in the URI are refused: the proxy forwards
// the client's own authentication and never needs its own.
std::optional<HostPort> parse_upstream_uri(std::string_view uri, std::string& error);

}  // namespace mongoguard::proxy
