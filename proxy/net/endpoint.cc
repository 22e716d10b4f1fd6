#include "proxy/net/endpoint.h"

#include <limits>

#include "config/url.h"

namespace mongoguard::proxy {
namespace {

// The checks a listen address and an upstream share, on the parts of
// `text` ("host[:port]" as written); messages name `text`.
std::optional<HostPort> host_port_of(const config::HostAndPort& parts, std::string_view text,
                                     std::string& error, std::uint16_t default_port) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (!parts.bracketed && parts.host.find(':') != std::string::npos) {
    error = "IPv6 address " + quoted + " must be written as [addr]:port";
    return std::nullopt;
  }
  if (!parts.bracketed && parts.port && parts.port->empty()) {
    error = "missing port in address " + quoted;
    return std::nullopt;
  }
  if (parts.host.empty()) {
    error = "missing host in address " + quoted;
    return std::nullopt;
  }
  HostPort out{parts.host, default_port};
  if (parts.port && !parts.port->empty()) {
    auto port = config::parse_port(*parts.port, 0, std::numeric_limits<std::size_t>::max());
    if (!port) {
      error = "bad port '" + *parts.port + "' in address " + quoted;
      return std::nullopt;
    }
    out.port = *port;
  }
  return out;
}

}  // namespace

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string& error,
                                        std::uint16_t default_port) {
  if (text.empty()) {
    error = "empty address";
    return std::nullopt;
  }
  auto parts = config::split_host_port(text, error);
  if (!parts) return std::nullopt;
  return host_port_of(*parts, text, error, default_port);
}

std::optional<HostPort> parse_upstream_uri(std::string_view uri, std::string& error) {
  const auto bad = [&](const std::string& why) {
    error = "bad upstream '" + std::string(uri) + "': " + why;
    return std::nullopt;
  };
  if (uri.find("://") != std::string_view::npos && config::url_scheme(uri) != "mongodb") {
    error = "upstream '" + std::string(uri) +
            "' must be a mongodb:// URI (mongodb+srv is not supported)";
    return std::nullopt;
  }
  auto url = config::parse_url(uri, error);
  if (!url) return bad(error);
  if (url->userinfo) {
    error = "upstream URI must not carry credentials: clients authenticate through the proxy";
    return std::nullopt;
  }
  if (url->hostport.find(',') != std::string::npos) {
    error =
        "upstream URI names several hosts; configure a replica set as 'upstream: {replica_set, "
        "members}'";
    return std::nullopt;
  }
  // A '#' straight after the host would have been read as part of it.
  if (url->fragment && url->path.empty() && !url->query) {
    return bad("a mongodb:// URI has no #fragment");
  }
  if (url->hostport.empty()) return bad("empty address");
  auto parsed = host_port_of(*url, url->hostport, error, 27017);
  if (!parsed) return bad(error);
  return parsed;
}

}  // namespace mongoguard::proxy
