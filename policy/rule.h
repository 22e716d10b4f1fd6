// Rules as the policy file states them, compiled for fast matching.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/command_info.h"

namespace mongoguard::policy {

enum class Action : std::uint8_t { kAllow, kLog, kHold, kBlock };
const char* action_name(Action a);
std::optional<Action> parse_action(std::string_view name);
// block > hold > log > allow: a block can never be approved into the database
inline bool stricter(Action a, Action b) { return static_cast<int>(a) > static_cast<int>(b); }
inline Action strictest(Action a, Action b) { return stricter(b, a) ? b : a; }

enum class Mode : std::uint8_t { kEnforce, kDryRun };
const char* mode_name(Mode m);
std::optional<Mode> parse_mode(std::string_view name);

enum class FilterMatch : std::uint8_t { kAny, kUnfiltered };

// When a filter that is not syntactically empty still counts as
// unfiltered: a capped count of it reaches `fraction` of the collection's
// documents, and more than `min_documents`.
struct UnfilteredMeasure {
  double fraction = 0.9;
  std::int64_t min_documents = 10;
};

// A glob over "db.collection". The database part and the collection part
// are matched separately (split at the first '.'); '*' matches any run of
// characters and '?' one character. "app.*" matches every collection of app;
// "*.*" matches everything.
class NamespaceGlob {
 public:
  static std::optional<NamespaceGlob> parse(std::string_view pattern, std::string& error);
  bool matches(std::string_view ns) const;
  // True when the pattern covers every collection of the database `ns`
  // names ("app.*" and "*.*" cover "app.*"; "app.tmp_*" does not). An
  // allow rule exempts a whole-database target only so.
  bool covers_database(std::string_view ns) const;
  const std::string& text() const { return text_; }
  // True when the pattern matches every namespace ("*.*").
  bool matches_everything() const;
  // True when every namespace `other` matches, this matches too. Only sure
  // answers: a general wildcard ("a?c*") covers another pattern only when
  // this part matches everything, so false may mean "not known".
  bool covers(const NamespaceGlob& other) const;
  // False only when no namespace can match both patterns (distinct literal
  // or prefix parts); wildcards may always overlap.
  bool may_overlap(const NamespaceGlob& other) const;
  // The collection part matches every collection (an allow rule so written
  // exempts whole-database operations too).
  bool covers_every_collection() const { return collection_.matches_everything(); }

 private:
  // Most patterns are a literal, "*" or "prefix*"; those skip the general
  // wildcard walk, which matters with a hundred rules per command.
  struct Part {
    enum class Kind : std::uint8_t { kAny, kExact, kPrefix, kWildcard } kind = Kind::kAny;
    std::string text;  // the pattern, or the prefix for kPrefix
    static Part compile(std::string_view pattern);
    bool matches(std::string_view value) const;
    bool matches_everything() const;
    bool covers(const Part& other) const;
    bool may_overlap(const Part& other) const;
  };
  std::string text_;
  Part db_;
  Part collection_;
};

// An IPv4 or IPv6 network ("10.0.0.0/8", "::1/128", or a bare address).
class Cidr {
 public:
  static std::optional<Cidr> parse(std::string_view text, std::string& error);
  // `address` is 16 bytes; IPv4 addresses are IPv4-mapped (::ffff:a.b.c.d).
  bool contains(const std::array<std::uint8_t, 16>& address) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::array<std::uint8_t, 16> network_{};
  int prefix_ = 0;  // in bits over the 16-byte form
};

// Parses a textual IPv4/IPv6 address into the 16-byte form Cidr uses.
std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text);

// One window of a damage budget: at most `documents` (or `percent` of the
// collection's document count) affected per `per`.
struct LimitWindow {
  std::int64_t documents = 0;  // 0 when the window is relative (percent)
  // A share of the collection, in (0, 100]; 0 when the window is absolute.
  // Resolved against the collection's size when a command is admitted.
  double percent = 0;
  std::chrono::milliseconds per{60'000};
  // Documents per this window across every group_by group together: with
  // group_by app or client, whose values the client picks, the one budget
  // a client cannot split by renaming itself. Enforced by the budget book;
  // absent = no namespace-wide ceiling.
  std::optional<std::int64_t> ceiling;

  bool relative() const { return percent > 0; }
  // The documents this window allows on a collection of `size` documents:
  // `documents`, or percent of the size rounded down and at least 1.
  // nullopt for a relative window whose collection size is unknown.
  std::optional<std::int64_t> resolve(std::optional<std::int64_t> size) const;
};

// A damage budget: one or more windows, counted from the server's replies,
// kept separately per namespace and per grouped identity. A command must
// fit every window; each window is its own breaker.
struct Limit {
  std::vector<LimitWindow> windows;  // at least one, no two with the same `per`
  bool group_by_user = false;
  bool group_by_app = false;
  bool group_by_client = false;
  // Measure every multi-document statement first with a capped count using
  // the same filter, on the client's own connection. On by default: a rule
  // that turns it off has statements of unknown size charged everything
  // that is left of the budget.
  bool preflight = true;
  // What to do when that count fails (allow, block or hold). Also decides
  // for a relative window whose collection size is not known.
  Action on_preflight_error = Action::kHold;
  // A tripped breaker closes by itself once its window has drained. Off by
  // default: a slow loop would otherwise resume on its own, so a person
  // resumes it (`ctl resume`), resets it or grants it more.
  bool auto_resume = false;

  bool relative() const;  // some window is a percent of the collection
};

struct Rule {
  std::string name;
  std::vector<NamespaceGlob> namespaces;  // empty = every namespace
  OperationSet operations;                // empty = every operation
  FilterMatch filter = FilterMatch::kAny;
  UnfilteredMeasure unfiltered;  // with filter: unfiltered
  // "name@authdb" (a bare name in the file means name@admin); empty = anyone.
  std::vector<std::string> users;
  std::vector<std::string> apps;
  std::vector<Cidr> clients;
  Action action = Action::kBlock;
  std::optional<Mode> mode;  // overrides the global mode for this rule
  std::string message;       // shown to the client when it blocks
  // With a limit, the rule acts only once its budget is spent (it trips);
  // until then matching operations pass and are counted.
  std::optional<Limit> limit;
  // Keep the before-images of what this rule lets through (journal.path
  // set; default: rules with a limit).
  bool journal = false;
  // Different named operators who must approve a hold of this rule
  // (hold.approvals); 1 = any one operator.
  int approvals = 1;
  int line = 0;    // where the rule starts in the file (for explain)
  int column = 0;  // and its column (for validate's warnings)
};

// Who sent a command, as far as the proxy knows.
struct Identity {
  // "name@authdb" once the client authenticated (the database its
  // saslStart/authenticate ran on); "" until then.
  std::string user;
  std::string app;  // client metadata application name
  std::string driver;
  std::string client_address;  // "ip:port", for logs
  std::optional<std::array<std::uint8_t, 16>> client_ip;
};

}  // namespace mongoguard::policy
