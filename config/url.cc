#include "config/url.h"

#include <charconv>

namespace mongoguard::config {
namespace {

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// path[?query][#fragment], the fragment cut first: "/a#b?c" has no query.
void split_tail(std::string_view tail, Url& out) {
  if (auto hash = tail.find('#'); hash != std::string_view::npos) {
    out.fragment = std::string(tail.substr(hash + 1));
    tail = tail.substr(0, hash);
  }
  if (auto question = tail.find('?'); question != std::string_view::npos) {
    out.query = std::string(tail.substr(question + 1));
    tail = tail.substr(0, question);
  }
  out.path = std::string(tail);
}

}  // namespace

std::optional<HostAndPort> split_host_port(std::string_view text, std::string& error) {
  HostAndPort out;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated '[' in address " + quoted(text);
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    out.bracketed = true;
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        error = "expected ':' after ']' in address " + quoted(text);
        return std::nullopt;
      }
      out.port = std::string(rest.substr(1));
    }
    return out;
  }
  const auto colon = text.rfind(':');
  out.host = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) out.port = std::string(text.substr(colon + 1));
  return out;
}

std::string_view url_scheme(std::string_view text) {
  const auto sep = text.find("://");
  return sep == std::string_view::npos ? std::string_view() : text.substr(0, sep);
}

std::optional<Url> parse_url(std::string_view text, std::string& error, UrlSyntax syntax) {
  Url out;
  out.scheme = std::string(url_scheme(text));
  if (!out.scheme.empty() || text.starts_with("://")) text.remove_prefix(out.scheme.size() + 3);
  const auto at = syntax.userinfo_to_last_at ? text.rfind('@')
                                             : text.substr(0, text.find_first_of("/?#")).rfind('@');
  if (at != std::string_view::npos) {
    out.userinfo = std::string(text.substr(0, at));
    text.remove_prefix(at + 1);
  }
  const auto end = text.find_first_of("/?#");
  out.hostport = std::string(text.substr(0, end));
  auto host = split_host_port(out.hostport, error);
  if (!host) return std::nullopt;
  static_cast<HostAndPort&>(out) = std::move(*host);
  if (end != std::string_view::npos) split_tail(text.substr(end), out);
  return out;
}

std::string Url::user() const {
  if (!userinfo) return {};
  const auto colon = userinfo->find(':');
  return colon == std::string::npos ? std::string() : userinfo->substr(0, colon);
}

std::string Url::password() const {
  if (!userinfo) return {};
  const auto colon = userinfo->find(':');
  return colon == std::string::npos ? *userinfo : userinfo->substr(colon + 1);
}

std::optional<std::uint16_t> parse_port(std::string_view text, unsigned min,
                                        std::size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

std::string redacted_url(std::string_view url, bool hide_path) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, scheme_end + 3));
  std::string_view rest = url.substr(scheme_end + 3);
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = rest.substr(0, at);
    const auto colon = userinfo.find(':');
    out +=
        colon == std::string_view::npos ? "***" : std::string(userinfo.substr(0, colon)) + ":***";
    rest = rest.substr(at);
  }
  if (hide_path) {
    const auto path = rest.find_first_of("/?#");
    if (path != std::string_view::npos) {
      out.append(rest.substr(0, path));
      out += "/***";
      return out;
    }
  }
  out.append(rest);
  return out;
}

}  // namespace mongoguard::config
