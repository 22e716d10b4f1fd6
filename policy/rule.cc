#include "policy/rule.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mongoguard::policy {

const char* action_name(Action a) {
  switch (a) {
    case Action::kAllow:
      return "allow";
    case Action::kLog:
      return "log";
    case Action::kBlock:
      return "block";
    case Action::kHold:
      return "hold";
  }
  return "unknown";
}

std::optional<Action> parse_action(std::string_view name) {
  if (name == "allow") return Action::kAllow;
  if (name == "log") return Action::kLog;
  if (name == "block") return Action::kBlock;
  if (name == "hold") return Action::kHold;
  return std::nullopt;
}

const char* mode_name(Mode m) { return m == Mode::kDryRun ? "dry-run" : "enforce"; }

std::optional<Mode> parse_mode(std::string_view name) {
  if (name == "enforce") return Mode::kEnforce;
  if (name == "dry-run") return Mode::kDryRun;
  return std::nullopt;
}

namespace {

// Iterative wildcard match: '*' any run, '?' one character.
bool wildcard_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

std::optional<NamespaceGlob> NamespaceGlob::parse(std::string_view pattern, std::string& error) {
  auto dot = pattern.find('.');
  if (pattern.empty() || dot == std::string_view::npos || dot == 0 || dot + 1 == pattern.size()) {
    error = "namespace '" + std::string(pattern) +
            "' must be a glob over db.collection, like app.families, app.* or *.*";
    return std::nullopt;
  }
  for (char c : pattern) {
    if (c == '[' || c == ']' || c == '{' || c == '}' || c == '\\' || c == ' ' || c == '\0') {
      error = "namespace '" + std::string(pattern) + "' has '" + std::string(1, c) +
              "': only '*' and '?' are special in namespace globs";
      return std::nullopt;
    }
  }
  auto db = pattern.substr(0, dot);
  if (db.find_first_of("/\"$") != std::string_view::npos) {
    error = "namespace '" + std::string(pattern) + "' has a character a database name cannot have";
    return std::nullopt;
  }
  NamespaceGlob glob;
  glob.text_ = std::string(pattern);
  glob.db_ = Part::compile(db);
  glob.collection_ = Part::compile(pattern.substr(dot + 1));
  return glob;
}

NamespaceGlob::Part NamespaceGlob::Part::compile(std::string_view pattern) {
  Part part;
  auto special = pattern.find_first_of("*?");
  if (pattern == "*") {
    part.kind = Kind::kAny;
  } else if (special == std::string_view::npos) {
    part.kind = Kind::kExact;
    part.text = std::string(pattern);
  } else if (special == pattern.size() - 1 && pattern.back() == '*') {
    part.kind = Kind::kPrefix;
    part.text = std::string(pattern.substr(0, special));
  } else {
    part.kind = Kind::kWildcard;
    part.text = std::string(pattern);
  }
  return part;
}

bool NamespaceGlob::Part::matches(std::string_view value) const {
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kExact:
      return value == text;
    case Kind::kPrefix:
      return value.substr(0, text.size()) == text;
    case Kind::kWildcard:
      return wildcard_match(text, value);
  }
  return false;
}

bool NamespaceGlob::Part::matches_everything() const {
  return kind == Kind::kAny ||
         (kind == Kind::kWildcard && text.find_first_not_of('*') == std::string::npos);
}

bool NamespaceGlob::Part::covers(const Part& other) const {
  if (matches_everything()) return true;
  if (kind == Kind::kExact) return other.kind == Kind::kExact && other.text == text;
  if (kind == Kind::kPrefix) {
    return (other.kind == Kind::kExact || other.kind == Kind::kPrefix) &&
           other.text.starts_with(text);
  }
  return false;  // a general wildcard: not worked out
}

bool NamespaceGlob::Part::may_overlap(const Part& other) const {
  const auto literal = [](const Part& p) {
    return p.kind == Kind::kExact || p.kind == Kind::kPrefix;
  };
  if (!literal(*this) || !literal(other)) return true;
  if (kind == Kind::kExact && other.kind == Kind::kExact) return text == other.text;
  if (kind == Kind::kExact) return text.starts_with(other.text);
  if (other.kind == Kind::kExact) return other.text.starts_with(text);
  return text.starts_with(other.text) || other.text.starts_with(text);
}

bool NamespaceGlob::matches_everything() const {
  return db_.matches_everything() && collection_.matches_everything();
}

bool NamespaceGlob::covers(const NamespaceGlob& other) const {
  return db_.covers(other.db_) && collection_.covers(other.collection_);
}

bool NamespaceGlob::may_overlap(const NamespaceGlob& other) const {
  // A whole-database target ("app.*") meets a rule of any collection
  // pattern, but an allow rule exempts it only when its collection part
  // matches everything, which overlaps every collection pattern anyway.
  return db_.may_overlap(other.db_) && collection_.may_overlap(other.collection_);
}

bool NamespaceGlob::covers_database(std::string_view ns) const {
  return db_.matches(ns.substr(0, ns.find('.'))) && collection_.matches_everything();
}

bool NamespaceGlob::matches(std::string_view ns) const {
  auto dot = ns.find('.');
  std::string_view db = ns.substr(0, dot);
  std::string_view collection =
      dot == std::string_view::npos ? std::string_view() : ns.substr(dot + 1);
  if (!db_.matches(db)) return false;
  // "db.*" is how whole-database operations (dropDatabase) name their
  // target: they touch every collection, so any collection pattern applies.
  if (collection == "*") return true;
  return collection_.matches(collection);
}

std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text) {
  std::array<std::uint8_t, 16> out{};
  std::string s(text);
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

std::optional<Cidr> Cidr::parse(std::string_view text, std::string& error) {
  auto slash = text.find('/');
  auto address_text = text.substr(0, slash);
  auto address = parse_ip(address_text);
  if (!address) {
    error = "'" + std::string(text) + "' is not an IP address or CIDR network";
    return std::nullopt;
  }
  bool v4 = address_text.find(':') == std::string_view::npos;
  int max_bits = v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    auto prefix = text.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 3 ||
        prefix.find_first_not_of("0123456789") != std::string_view::npos) {
      error = "'" + std::string(text) + "' has a bad prefix length";
      return std::nullopt;
    }
    bits = std::stoi(std::string(prefix));
    if (bits > max_bits) {
      error = "'" + std::string(text) + "': prefix length over " + std::to_string(max_bits);
      return std::nullopt;
    }
  }
  Cidr cidr;
  cidr.text_ = std::string(text);
  cidr.prefix_ = v4 ? bits + 96 : bits;
  cidr.network_ = *address;
  // Clear host bits so contains() can compare whole bytes.
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(cidr.prefix_ - i * 8, 0, 8);
    cidr.network_[i] &= static_cast<std::uint8_t>(0xff00 >> keep);
  }
  return cidr;
}

bool Cidr::contains(const std::array<std::uint8_t, 16>& address) const {
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(prefix_ - i * 8, 0, 8);
    if (keep == 0) break;
    auto mask = static_cast<std::uint8_t>(0xff00 >> keep);
    if ((address[i] & mask) != network_[i]) return false;
  }
  return true;
}

}  // namespace mongoguard::policy

namespace mongoguard::policy {

std::optional<std::int64_t> LimitWindow::resolve(std::optional<std::int64_t> size) const {
  if (!relative()) return documents;
  if (!size) return std::nullopt;
  // In millionths of a percent, so that 0.29% of 100 is 29 and not 28
  // (0.29 * 100 is 28.999... in floating point); split so nothing overflows.
  constexpr std::int64_t kWhole = 100'000'000;  // 100% in millionths of a percent
  const auto share = static_cast<std::int64_t>(std::llround(percent * 1'000'000.0));
  const std::int64_t n = std::max<std::int64_t>(*size, 0);
  const std::int64_t share_of = (n / kWhole) * share + (n % kWhole) * share / kWhole;
  return std::max<std::int64_t>(share_of, 1);
}

bool Limit::relative() const {
  return std::any_of(windows.begin(), windows.end(),
                     [](const LimitWindow& w) { return w.relative(); });
}

}  // namespace mongoguard::policy
