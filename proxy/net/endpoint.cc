#include "proxy/net/endpoint.h"

#include <charconv>

namespace mongoguard::proxy {

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string& error,
                                        std::uint16_t default_port) {
  HostPort out;
  out.port = default_port;
  std::string_view port_text;
  if (text.empty()) {
    error = "empty address";
    return std::nullopt;
  }
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated '[' in address '" + std::string(text) + "'";
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        error = "expected ':' after ']' in address '" + std::string(text) + "'";
        return std::nullopt;
      }
      port_text = rest.substr(1);
    }
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      error = "IPv6 address '" + std::string(text) + "' must be written as [addr]:port";
      return std::nullopt;
    }
    if (colon == std::string_view::npos) {
      out.host = std::string(text);
    } else {
      out.host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      if (port_text.empty()) {
        error = "missing port in address '" + std::string(text) + "'";
        return std::nullopt;
      }
    }
  }
  if (out.host.empty()) {
    error = "missing host in address '" + std::string(text) + "'";
    return std::nullopt;
  }
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value > 65535) {
      error = "bad port '" + std::string(port_text) + "' in address '" + std::string(text) + "'";
      return std::nullopt;
    }
    out.port = static_cast<std::uint16_t>(value);
  }
  return out;
}

std::optional<HostPort> parse_upstream_uri(std::string_view uri, std::string& error) {
  std::string_view rest = uri;
  constexpr std::string_view kScheme = "mongodb://";
  if (rest.substr(0, kScheme.size()) == kScheme) {
    rest.remove_prefix(kScheme.size());
  } else if (rest.find("://") != std::string_view::npos) {
    error = "upstream '" + std::string(uri) +
            "' must be a mongodb:// URI (mongodb+srv is not supported)";
    return std::nullopt;
  }
  auto end = rest.find_first_of("/?");
  auto hosts = rest.substr(0, end);
  if (hosts.find('@') != std::string_view::npos) {
    error = "upstream URI must not carry credentials: clients authenticate through the proxy";
    return std::nullopt;
  }
  if (hosts.find(',') != std::string_view::npos) {
    error =
        "upstream URI names several hosts; configure a replica set as 'upstream: {replica_set, "
        "members}'";
    return std::nullopt;
  }
  auto parsed = parse_host_port(hosts, error);
  if (!parsed) error = "bad upstream '" + std::string(uri) + "': " + error;
  return parsed;
}

}  // namespace mongoguard::proxy
