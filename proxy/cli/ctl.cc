#include "proxy/cli/ctl.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "bson/text.h"
#include "config/token_file.h"
#include "policy/duration.h"
#include "proxy/cli/args.h"
#include "proxy/net/asio.h"
#include "proxy/observe/json.h"

// clang-format off
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/asio/ssl.hpp>
// clang-format on

namespace mongoguard::tools {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = proxy::asio;
using nlohmann::json;
using proxy::tcp;

namespace {

constexpr int kOk = 0;
constexpr int kApiError = 1;
constexpr int kUsage = 2;

const char* kUsageText =
    "usage: mongoguard ctl [--admin URL] [--token-file FILE] [--as NAME] [--json] COMMAND\n"
    "commands:\n"
    "  holds                       pending held operations\n"
    "  show ID                     one hold in full: who, what, why, the documents\n"
    "  approve ID | reject ID      decide one hold (approve releases that one operation)\n"
    "  approve-all NAME            approve every hold of a breaker\n"
    "  reject-all NAME             reject every hold of a breaker\n"
    "  breakers                    budgets and their windows\n"
    "  resume NAME                 close a tripped breaker, keeping what its window counted\n"
    "  grant NAME --documents N | --minutes T   break-glass allowance; releases the\n"
    "                              pending holds it covers, oldest first\n"
    "  reset NAME                  empty a breaker's window and close it\n"
    "  decisions [--limit N]       recent audit records, newest first\n"
    "  reload                      reload the configuration file\n"
    "  journal [--ns NS] [--since T] [--until T] [--rule R] [--hold ID] [--limit N]\n"
    "                              journaled operations, newest first, and a summary\n"
    "  journal export --ns NS [--since T] [--until T] --out DIR\n"
    "                              the before-images as a mongodump folder\n"
    "  restore --ns NS [--since T] [--until T] [--hold ID] [--to URI] [--dry-run] [--force]\n"
    "                              put journaled documents back (T: 10m, 2h or an ISO time)\n"
    "  ready | alive               a probe: /readyz or /healthz answered 200 (exit 0) or\n"
    "                              not (exit 1); no token needed, /readyz says why with one\n"
    "options:\n"
    "  --admin URL        admin endpoint, http:// or https:// (default http://127.0.0.1:9901)\n"
    "  --token-file FILE  bearer token (default $MONGOGUARD_ADMIN_TOKEN_FILE,\n"
    "                     else /etc/mongoguard/admin.token)\n"
    "  --ca-file FILE     CA certificate(s) that sign an https endpoint's certificate\n"
    "                     (default $MONGOGUARD_ADMIN_CA_FILE, else the system's roots)\n"
    "  --as NAME          operator name recorded with decisions (default $USER) when\n"
    "                     the shared admin token is used; a named operator's token\n"
    "                     names them (admin.operators), whatever --as says\n"
    "  --reason TEXT      why: shown to the held client and written to the audit log\n"
    "  --json             print the API's JSON instead of tables\n"
    "A breaker NAME may be a unique prefix of a name `ctl breakers` lists.\n";

int usage(const std::string& message) { return usage_error("ctl", message); }

struct Reply {
  unsigned status = 0;
  std::string body;
};

struct Endpoint {
  proxy::HttpUrl url;
  bool https = false;
  std::string ca_file;  // https: empty = the system's trusted roots
};

template <typename Stream>
Reply exchange(Stream& stream, const Endpoint& base, const std::string& token, http::verb method,
               const std::string& path, const std::string& body) {
  std::string prefix = base.url.target == "/" ? "" : base.url.target;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  http::request<http::string_body> req{method, prefix + path, 11};
  req.set(http::field::host, base.url.host_header());
  req.set(http::field::user_agent, "mongoguard-ctl/" MONGOGUARD_VERSION);
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (method == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.keep_alive(false);
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  return Reply{res.result_int(), std::move(res.body())};
}

// One request over a fresh connection; throws on network and TLS errors
// (an https certificate that does not verify is one).
Reply request(const Endpoint& base, const std::string& token, http::verb method,
              const std::string& path, const std::string& body) {
  asio::io_context io;
  tcp::resolver resolver(io);
  const auto& url = base.url;
  if (!base.https) {
    beast::tcp_stream stream(io);
    stream.connect(resolver.resolve(url.host, url.port));
    auto reply = exchange(stream, base, token, method, path, body);
    proxy::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return reply;
  }
  namespace ssl = asio::ssl;
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (base.ca_file.empty()) {
    ctx.set_default_verify_paths();
  } else {
    ctx.load_verify_file(base.ca_file);
  }
  ctx.set_verify_mode(ssl::verify_peer);
  ctx.set_verify_callback(ssl::host_name_verification(url.host));
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  proxy::error_code ec;
  if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
    throw std::runtime_error("cannot set the TLS server name " + url.host);
  }
  beast::get_lowest_layer(stream).connect(resolver.resolve(url.host, url.port));
  stream.handshake(ssl::stream_base::client);
  auto reply = exchange(stream, base, token, method, path, body);
  stream.shutdown(ec);  // the server may just close; nothing to do about it
  return reply;
}

// Every string the admin endpoint returns may hold a client's text (an
// appName, a namespace): shown with control characters spelled out, so that
// none can move the cursor, erase lines or forge output.
std::string str(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return wire::control_escaped(v.get<std::string>());
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v.get<double>());
    return buf;
  }
  return proxy::dump_json(v);
}

std::string field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? "" : str(*it);
}

std::string seconds_text(const json& v) {
  if (!v.is_number()) return "";
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(v.get<double>()));
  return policy::format_duration(ms, policy::DurationStyle::kElapsed);
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.resize(width, ' ');
  return s;
}

std::string shorten(std::string s, std::size_t max) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

// What a hold would affect, read when it was held: up to five documents.
void print_preview(const json& hold) {
  const json preview = hold.value("preview", json());
  if (!preview.is_object()) return;
  if (preview.contains("error")) {
    std::cout << "hold " << field(hold, "id") << ": no preview ("
              << printable(field(preview, "error")) << ")\n";
    return;
  }
  const json documents = preview.value("documents", json::array());
  std::cout << "hold " << field(hold, "id") << " would affect " << documents.size()
            << (preview.value("more", false) ? " or more" : "") << " document(s)"
            << (documents.empty() ? "" : ":") << "\n";
  for (const auto& doc : documents) std::cout << "  " << shorten(printable(str(doc)), 160) << "\n";
}

// "1 of 2 (alice)" for a hold that needs several approvals; "" otherwise.
std::string approvals_text(const json& h) {
  const int needed = h.value("approvals_needed", 1);
  if (needed <= 1) return "";
  std::string names;
  for (const auto& a : h.value("approvals", json::array())) {
    names += (names.empty() ? "" : ", ") + field(a, "by");
  }
  return std::to_string(h.value("approvals", json::array()).size()) + " of " +
         std::to_string(needed) + (names.empty() ? "" : " (" + names + ")");
}

// Who sent it, shortly: user@authdb, else the app, else the client address.
std::string who_short(const json& h) {
  std::string out = field(h, "user");
  const std::string app = field(h, "app");
  if (!app.empty()) out += (out.empty() ? "" : " ") + std::string("app=") + app;
  if (out.empty()) out = field(h, "client");
  return out;
}

void print_holds(const json& data) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : data.value("holds", json::array())) {
    const json rate = h.value("rate", json());
    std::string recent = "-";
    if (rate.is_object()) {
      char span[32];
      std::snprintf(span, sizeof span, "%.1f s", rate.value("seconds", 0.0));
      recent = field(rate, "documents") + " in " + span;
    }
    const std::string approvals = approvals_text(h);
    rows.push_back({field(h, "id"), field(h, "ns"), field(h, "operation"), field(h, "size"), recent,
                    who_short(h), seconds_text(h["waiting_seconds"]), field(h, "rule"),
                    field(h, "breaker").empty() ? "-" : field(h, "breaker"),
                    approvals.empty() ? "-" : approvals, shorten(field(h, "reason"), 60)});
    // Fleet mode: which proxy holds the client's connection.
    if (h.contains("owner")) rows.back().push_back(field(h, "owner"));
  }
  if (rows.empty()) {
    std::cout << "no pending holds\n";
    return;
  }
  std::vector<std::string> headers{"ID",      "NAMESPACE", "OP",      "AFFECTS",   "RECENT", "WHO",
                                   "WAITING", "RULE",      "BREAKER", "APPROVALS", "REASON"};
  if (data.contains("fleet")) headers.push_back("PROXY");
  std::cout << format_table(headers, rows);
  for (const auto& h : data.value("holds", json::array())) print_preview(h);
}

void print_breakers(const json& data) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& b : data.value("breakers", json::array())) {
    std::string allowance;
    const auto& a = b.value("allowance", json::object());
    if (a.value("documents", 0) > 0) allowance = field(a, "documents") + " docs";
    if (a.contains("expires_in_seconds") && a["expires_in_seconds"].is_number()) {
      if (!allowance.empty()) allowance += ", ";
      allowance += "free " + seconds_text(a["expires_in_seconds"]);
    }
    rows.push_back({field(b, "name"), field(b, "used") + "/" + field(b, "limit"), field(b, "per"),
                    b.value("tripped", false) ? "TRIPPED" : "ok",
                    seconds_text(b["drains_in_seconds"]), allowance.empty() ? "-" : allowance,
                    field(b, "pending_holds")});
  }
  if (rows.empty()) {
    std::cout << "no breakers yet\n";
    return;
  }
  std::cout << format_table({"BREAKER", "USED", "PER", "STATE", "DRAINS", "ALLOWANCE", "HELD"},
                            rows);
}

std::string record_time(const json& d) {
  auto it = d.find("time");
  if (it == d.end()) return "";
  if (it->is_object() && it->contains("$date") && (*it)["$date"].is_string()) {
    return (*it)["$date"].get<std::string>();
  }
  return str(*it);
}

void print_decisions(const json& data) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : data.value("decisions", json::array())) {
    if (d.contains("operator_action")) {
      rows.push_back({record_time(d), field(d, "operator_action"), field(d, "target"), "",
                      field(d, "details"), "by " + field(d, "by")});
      continue;
    }
    std::string targets;
    for (const auto& t : d.value("targets", json::array())) {
      if (!targets.empty()) targets += ", ";
      targets += field(t, "operation") + " " + field(t, "ns");
    }
    if (targets.empty()) targets = field(d, "command");
    std::string who = field(d, "client");
    if (d.contains("app")) who += " app=" + field(d, "app");
    if (d.contains("user")) who += " user=" + field(d, "user");
    std::string outcome = field(d, "outcome");
    if (outcome.empty() && d.contains("n")) outcome = "n=" + field(d, "n");
    std::string verdict = field(d, "verdict");
    if (d.value("dry_run", false)) verdict += " (dry run)";
    rows.push_back({record_time(d), verdict, targets, field(d, "rule"), outcome, who});
  }
  if (rows.empty()) {
    std::cout << "no decisions yet\n";
    return;
  }
  std::cout << format_table({"TIME", "VERDICT", "OPERATION", "RULE", "OUTCOME", "WHO"}, rows);
}

// The commands; those that take an argument name a hold (show, approve,
// reject) or a breaker. Those that decide are signed with --as.
struct Command {
  const char* name;
  bool takes_name;
  bool decides;
};
constexpr Command kCommands[] = {
    {"holds", false, false},    {"show", true, false},       {"approve", true, true},
    {"reject", true, true},     {"approve-all", true, true}, {"reject-all", true, true},
    {"breakers", false, false}, {"grant", true, true},       {"reset", true, true},
    {"resume", true, true},     {"decisions", false, false}, {"reload", false, false},
    {"journal", false, false},  {"restore", false, false},   {"ready", false, false},
    {"alive", false, false},
};

const Command* find_command(const std::string& name) {
  for (const auto& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

bool takes_name(const std::string& command) {
  const auto* c = find_command(command);
  return c && c->takes_name;
}

bool decides(const std::string& command) {
  const auto* c = find_command(command);
  return c && c->decides;
}

// The pending hold `id` in GET /api/holds' answer; nullptr when there is none.
const json* find_hold(const json& data, const std::string& id) {
  auto it = data.find("holds");
  if (it == data.end() || !it->is_array()) return nullptr;
  for (const auto& h : *it) {
    if (field(h, "id") == id) return &h;
  }
  return nullptr;
}

// `ctl show ID`: one hold, every field on its own line, and the documents
// it would affect in full.
void print_hold(const json& h) {
  const std::string budget = h.value("limit", 0) > 0 ? field(h, "documents_in_window") + " of " +
                                                           field(h, "limit") + " in the window"
                                                     : "";
  const std::pair<const char*, std::string> lines[] = {
      {"hold", field(h, "id")},
      {"namespace", field(h, "ns")},
      {"operation", field(h, "operation") + " (" + field(h, "command") + ", " +
                        field(h, "statements") + " statement(s))"},
      {"filter", field(h, "filter")},
      {"rule", field(h, "rule")},
      {"breaker", field(h, "breaker")},
      {"budget", budget},
      {"reason", field(h, "reason")},
      {"affects", field(h, "size")},
      {"recent", h.value("rate", json()).is_object() ? field(h["rate"], "text") : ""},
      {"client", field(h, "client") + " (connection " + field(h, "connection") + ")"},
      {"user", field(h, "user")},
      {"app", field(h, "app")},
      {"driver", field(h, "driver")},
      {"proxy", field(h, "owner")},
      {"held since", field(h, "created") + " (" + seconds_text(h["waiting_seconds"]) + " ago)"},
      {"approvals", approvals_text(h)},
      {"approving", "releases " + field(h, "releases")},
  };
  for (const auto& [key, value] : lines) {
    if (!value.empty()) std::cout << pad(key, 12) << printable(value) << "\n";
  }
  const json preview = h.value("preview", json());
  if (!preview.is_object()) return;
  if (preview.contains("error")) {
    std::cout << pad("affects", 12) << "not read: " << printable(field(preview, "error")) << "\n";
    return;
  }
  const json documents = preview.value("documents", json::array());
  std::cout << pad("sample", 12) << documents.size()
            << (preview.value("more", false) ? " (of more)" : "") << " document(s)"
            << (documents.empty() ? "" : ":") << "\n";
  for (const auto& doc : documents) std::cout << "  " << printable(str(doc)) << "\n";
}

void add_options(CLI::App& app, CtlArgs& args) {
  app.add_option("--admin", args.admin);
  app.add_option("--token-file", args.token_file)->envname("MONGOGUARD_ADMIN_TOKEN_FILE");
  app.add_option("--ca-file", args.ca_file)->envname("MONGOGUARD_ADMIN_CA_FILE");
  app.add_option("--as", args.as)->envname("USER");
  app.add_flag("--json", args.json);
  app.add_option("--reason", args.reason);
  for (const auto& c : kCommands) {
    // Options of the whole line may follow the command.
    auto* sub = app.add_subcommand(c.name)->fallthrough();
    if (c.takes_name) sub->add_option("NAME", args.name);
  }
  for (const char* name : {"journal", "restore"}) {
    auto* sub = app.get_subcommand(name);
    sub->add_option("--ns", args.ns);
    sub->add_option("--since", args.since);
    sub->add_option("--until", args.until);
    sub->add_option("--hold", args.hold);
  }
  auto* journal = app.get_subcommand("journal");
  journal->add_option("ACTION", args.journal_action);
  journal->add_option("--rule", args.rule);
  journal->add_option("--out", args.out);
  journal->add_option("--limit", args.limit);
  auto* restore = app.get_subcommand("restore");
  restore->add_option("--to", args.to);
  restore->add_flag("--dry-run", args.dry_run);
  restore->add_flag("--force", args.force);
  auto* grant = app.get_subcommand("grant");
  grant->add_option("--documents", args.documents);
  grant->add_option("--minutes", args.minutes);
  app.get_subcommand("decisions")->add_option("--limit", args.limit);
  app.require_subcommand(0, 1);  // a second command is an extra word
}

// What is wrong with the line CLI11 accepted, in ctl's words; "" = nothing.
std::string command_problem(const CLI::App& app, CtlArgs& args) {
  if (auto option = first_unrecognised(app, true)) {
    for (const auto* sub : app.get_subcommands(nullptr)) {
      if (sub->get_option_no_throw(*option)) return *option + " goes with " + sub->get_name();
    }
    return "unknown option " + *option;
  }
  const auto extra = first_unrecognised(app);
  const auto chosen = app.get_subcommands();
  if (chosen.empty()) return extra ? "unknown command " + *extra : "no command given";
  args.command = chosen.front()->get_name();
  if (args.command == "journal" && !args.journal_action.empty() &&
      args.journal_action != "export") {
    return "journal takes no argument but export, not " + args.journal_action;
  }
  if (!takes_name(args.command)) return extra ? args.command + " takes no argument" : "";
  if (extra || chosen.front()->count("NAME") != 1) {
    return args.command + " needs exactly one argument";
  }
  return "";
}

// https://: the same URL shape as http:// over TLS, port 443 unless given.
std::optional<Endpoint> admin_endpoint(const CtlArgs& args, std::string& error) {
  Endpoint base;
  base.ca_file = args.ca_file;
  const std::string& admin = args.admin;
  auto url = proxy::parse_http_url(admin, /*allow_https=*/true);
  if (!url) {
    error = "--admin must be an http(s)://HOST:PORT URL, not " + admin;
    return std::nullopt;
  }
  base.url = *url;
  base.https = url->https;
  if (!base.https && !args.ca_file.empty() && std::getenv("MONGOGUARD_ADMIN_CA_FILE") == nullptr) {
    error = "--ca-file goes with an https:// --admin URL";
    return std::nullopt;
  }
  return base;
}

// grant's break-glass allowance into the request body.
bool add_allowance(const CtlArgs& args, json& body, std::string& error) {
  if (!args.documents && !args.minutes) {
    error = "grant needs --documents N and/or --minutes T";
    return false;
  }
  try {
    std::size_t used = 0;
    if (args.documents) {
      const long long n = std::stoll(*args.documents, &used);
      if (used != args.documents->size() || n <= 0) throw std::invalid_argument("documents");
      body["documents"] = n;
    }
    if (args.minutes) {
      const double t = std::stod(*args.minutes, &used);
      if (used != args.minutes->size() || !(t > 0)) throw std::invalid_argument("minutes");
      body["minutes"] = t;
    }
  } catch (const std::exception&) {
    error = "--documents needs a positive integer, --minutes a positive number";
    return false;
  }
  return true;
}

bool positive_integer(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos &&
         std::stoll(text.substr(0, 9)) != 0;
}

// The API's refusal on stderr (its message, and the lines of a failed reload).
int refused(const Reply& reply, const json& data, bool raw) {
  std::string message = "HTTP " + std::to_string(reply.status);
  if (data.is_object() && data.contains("error")) message = field(data, "error");
  std::fprintf(stderr, "mongoguard ctl: %s\n", message.c_str());
  if (data.is_object() && data.contains("errors")) {
    for (const auto& line : data["errors"]) std::fprintf(stderr, "%s\n", str(line).c_str());
  }
  if (raw && !data.is_discarded()) std::cout << data.dump(2) << "\n";
  return kApiError;
}

void print_grant(const std::string& name, const json& data) {
  const auto& b = data.value("breaker", json::object());
  const auto& a = b.value("allowance", json::object());
  std::cout << "breaker " << name << ": allowance " << field(a, "documents") << " document(s)";
  if (a.contains("expires_in_seconds") && a["expires_in_seconds"].is_number()) {
    std::cout << ", free passage for " << seconds_text(a["expires_in_seconds"]);
  }
  std::cout << "; released " << field(data, "released") << " held operation(s)";
  if (data.value("still_pending", 0) > 0) {
    std::cout << ", " << field(data, "still_pending") << " still pending";
  }
  std::cout << "\n";
}

void print_result(const CtlArgs& args, const json& data) {
  const auto& command = args.command;
  if (command == "holds") {
    print_holds(data);
  } else if (command == "breakers") {
    print_breakers(data);
  } else if (command == "decisions") {
    print_decisions(data);
  } else if (command == "reload") {
    std::cout << "configuration reloaded\n";
  } else if (command == "approve" || command == "reject") {
    if (field(data, "outcome") == "waiting") {
      std::cout << "hold " << field(data, "id") << ": approval by " << field(data, "by")
                << " recorded (" << data.value("approvals", json::array()).size() << " of "
                << field(data, "approvals_needed") << "); another operator must approve\n";
    } else {
      std::cout << "hold " << field(data, "id") << " " << field(data, "outcome") << " by "
                << field(data, "by") << "\n";
    }
  } else if (command == "approve-all" || command == "reject-all") {
    std::cout << field(data, "resolved") << " hold(s) on " << args.name << " "
              << field(data, "outcome") << " by " << field(data, "by") << "\n";
    if (data.value("waiting", 0) > 0) {
      std::cout << field(data, "waiting") << " hold(s) wait for another operator's approval\n";
    }
  } else if (command == "reset" || command == "resume") {
    std::cout << "breaker " << args.name << (command == "reset" ? " reset" : " resumed")
              << (command == "resume" && !data.value("was_tripped", true) ? " (it was not tripped)"
                                                                          : "")
              << "\n";
  } else {
    print_grant(args.name, data);
  }
  if (data.contains("note")) std::cout << field(data, "note") << "\n";
}

// `ctl ready` and `ctl alive`: a container's exec probe. /readyz and
// /healthz answer without a token; the token, when the file holds one,
// gets /readyz's detail. Exit 0 on 200, else 1, the answer on stdout. An
// endpoint that accepts and never answers fails it within kProbeSeconds.
constexpr unsigned kProbeSeconds = 2;

void probe_timed_out(int) {
  static const char kMessage[] = "mongoguard ctl: no answer within 2 s\n";
  static_assert(kProbeSeconds == 2, "the message names the limit");
  (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  _exit(kApiError);
}

int probe(const CtlArgs& args) {
  std::string error;
  const auto base = admin_endpoint(args, error);
  if (!base) return usage(error);
  std::signal(SIGALRM, probe_timed_out);
  alarm(kProbeSeconds);
  const auto token = config::read_token_file(args.token_file);
  const std::string path = args.command == "ready" ? "/readyz" : "/healthz";
  Reply reply;
  try {
    reply = request(*base, token.ok() ? token.token : "", http::verb::get, path, "");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mongoguard ctl: cannot reach %s: %s\n", args.admin.c_str(), e.what());
    return kApiError;
  }
  // Line by line: the detail's lines stay lines, each with its control
  // characters spelled out.
  std::string_view rest = reply.body;
  while (!rest.empty()) {
    const auto end = std::min(rest.find('\n'), rest.size());
    std::cout << printable(rest.substr(0, end)) << "\n";
    rest.remove_prefix(std::min(end + 1, rest.size()));
  }
  return reply.status == 200 ? kOk : kApiError;
}

}  // namespace

std::string url_encode(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size(), 0);
  auto measure = [&width](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header);
  for (const auto& row : rows) measure(row);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < width.size()) line += std::string(width[i] - cell.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  emit(header);
  for (const auto& row : rows) emit(row);
  return out;
}

proxy::CommandLine parse_ctl(int argc, const char* const* argv, CtlArgs& args, std::string& error) {
  CLI::App app;
  configure(app);
  auto* help = app.add_flag("-h,--help");
  add_options(app, args);
  const auto failure = parse(app, argc, argv);
  if (help->count() > 0) return proxy::CommandLine::kHelp;
  if (failure) {
    error = failure->option.empty() ? failure->message : failure->option + " needs a value";
  } else {
    error = command_problem(app, args);
  }
  return error.empty() ? proxy::CommandLine::kRun : proxy::CommandLine::kError;
}

std::optional<CtlRequest> build_request(const CtlArgs& args, std::string& error) {
  const auto& command = args.command;
  const bool names = takes_name(command);
  if (decides(command) && args.as.empty()) {
    error = "say who you are with --as NAME ($USER is unset)";
    return std::nullopt;
  }
  json body = json::object();
  if ((decides(command) || command == "reload") && !args.as.empty()) body["by"] = args.as;
  if (decides(command) && !args.reason.empty()) body["reason"] = args.reason;
  CtlRequest request;
  request.post = decides(command) || command == "reload";
  request.path = "/api/" + std::string(command == "show" ? "holds" : command);
  if (command == "decisions" && args.limit) {
    if (!positive_integer(*args.limit)) {
      error = "--limit needs a positive integer";
      return std::nullopt;
    }
    request.path += "?limit=" + *args.limit;
  } else if (command == "approve" || command == "reject") {
    request.path = "/api/holds/" + url_encode(args.name) + "/" + command;
  } else if (names && command != "show") {
    request.path = "/api/breakers/" + url_encode(args.name) + "/" + command;
    if (command == "grant" && !add_allowance(args, body, error)) return std::nullopt;
  }
  if (request.post) request.body = body.dump();
  return request;
}

int ctl_api(const CtlArgs& args, bool post, const std::string& path, const std::string& body,
            json& data) {
  std::string error;
  const auto base = admin_endpoint(args, error);
  if (!base) return usage(error);
  const auto token = config::read_token_file(args.token_file);
  if (!token.ok()) return usage(token.error);
  Reply reply;
  try {
    reply = request(*base, token.token, post ? http::verb::post : http::verb::get, path, body);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mongoguard ctl: cannot reach %s: %s\n", args.admin.c_str(), e.what());
    return kApiError;
  }
  data = json::parse(reply.body, nullptr, false);
  if (reply.status < 200 || reply.status >= 300) return refused(reply, data, args.json);
  if (data.is_discarded()) {
    std::fprintf(stderr, "mongoguard ctl: the admin endpoint answered with something not JSON\n");
    return kApiError;
  }
  return kOk;
}

std::string printable(std::string_view text) { return wire::control_escaped(text); }

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool names_breaker(const std::string& command) {
  return takes_name(command) && command != "show" && command != "approve" && command != "reject";
}

}  // namespace

std::string match_breaker(const std::vector<std::string>& names, std::string& name) {
  std::vector<std::string> prefixed;
  for (const auto& n : names) {
    if (n == name) return "";
    if (n.starts_with(name)) prefixed.push_back(n);
  }
  if (prefixed.size() == 1) {
    name = prefixed.front();
    return "";
  }
  std::string list;
  const auto join = [&list](const std::string& n) { list += (list.empty() ? "" : ", ") + n; };
  if (prefixed.size() > 1) {
    for (const auto& n : prefixed) join(n);
    return printable(name) + " matches several breakers: " + printable(list);
  }
  if (names.empty()) return "no breaker named " + printable(name) + " (no breakers yet)";
  std::vector<std::pair<std::size_t, std::string>> ranked;
  for (const auto& n : names) ranked.emplace_back(edit_distance(name, n), n);
  std::sort(ranked.begin(), ranked.end());
  for (std::size_t i = 0; i < ranked.size() && i < 3; ++i) join(ranked[i].second);
  return "no breaker named " + printable(name) + "; closest: " + printable(list);
}

int ctl_main(int argc, char** argv) {
  CtlArgs args;
  std::string error;
  switch (parse_ctl(argc, argv, args, error)) {
    case proxy::CommandLine::kHelp:
      std::fputs(kUsageText, stdout);
      return kOk;
    case proxy::CommandLine::kRun:
      break;
    default:
      return usage(error);
  }
  if (args.command == "journal" || args.command == "restore") return run_journal_command(args);
  if (args.command == "ready" || args.command == "alive") return probe(args);
  // A request that cannot be made is a usage error before anything is asked.
  if (!build_request(args, error)) return usage(error);
  if (names_breaker(args.command)) {
    json listed;
    if (const int code = ctl_api(args, false, "/api/breakers", "", listed); code != kOk)
      return code;
    std::vector<std::string> names;
    for (const auto& b : listed.value("breakers", json::array())) names.push_back(field(b, "name"));
    if (auto problem = match_breaker(names, args.name); !problem.empty()) {
      std::fprintf(stderr, "mongoguard ctl: %s\n", problem.c_str());
      return kApiError;
    }
  }
  const auto call = build_request(args, error);
  if (!call) return usage(error);
  json data;
  if (const int code = ctl_api(args, call->post, call->path, call->body, data); code != kOk) {
    return code;
  }
  if (args.command == "show") {
    const json* hold = find_hold(data, args.name);
    if (!hold) {
      std::fprintf(stderr,
                   "mongoguard ctl: no pending hold %s (decided or gone: see `ctl decisions`)\n",
                   printable(args.name).c_str());
      return kApiError;
    }
    if (args.json) {
      std::cout << proxy::dump_json(*hold) << "\n";
    } else {
      print_hold(*hold);
    }
    return kOk;
  }
  if (args.json) {
    std::cout << proxy::dump_json(data) << "\n";
  } else {
    print_result(args, data);
  }
  return kOk;
}

}  // namespace mongoguard::tools
