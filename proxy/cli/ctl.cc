#include "proxy/cli/ctl.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

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
    "  approve ID | reject ID      decide one hold\n"
    "  approve-all NAME            approve every hold of a breaker\n"
    "  reject-all NAME             reject every hold of a breaker\n"
    "  breakers                    budgets and their windows\n"
    "  grant NAME --documents N | --minutes T   break-glass allowance\n"
    "  reset NAME                  empty a breaker's window and close it\n"
    "  decisions [--limit N]       recent audit records, newest first\n"
    "  reload                      reload the configuration file\n"
    "options:\n"
    "  --admin URL        admin endpoint, http:// or https:// (default http://127.0.0.1:9901)\n"
    "  --token-file FILE  bearer token (default $MONGOGUARD_ADMIN_TOKEN_FILE,\n"
    "                     else /etc/mongoguard/admin.token)\n"
    "  --ca-file FILE     CA certificate(s) that sign an https endpoint's certificate\n"
    "                     (default $MONGOGUARD_ADMIN_CA_FILE, else the system's roots)\n"
    "  --as NAME          operator name recorded with decisions (default $USER)\n"
    "  --json             print the API's JSON instead of tables\n";

int usage(const std::string& message) {
  std::fprintf(stderr, "mongoguard ctl: %s\n%s", message.c_str(), kUsageText);
  return kUsage;
}

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
  req.set(http::field::authorization, "Bearer " + token);
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

std::string str(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
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
  auto s = static_cast<long long>(v.get<double>() + 0.5);
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
}

std::string shorten(std::string s, std::size_t max) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

void print_holds(const json& data) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : data.value("holds", json::array())) {
    std::string docs =
        h.value("limit", 0) > 0 ? field(h, "documents_in_window") + "/" + field(h, "limit") : "-";
    rows.push_back({field(h, "id"), field(h, "ns"), field(h, "operation"), field(h, "client"),
                    field(h, "user"), field(h, "app"), docs, seconds_text(h["waiting_seconds"]),
                    field(h, "rule"), shorten(field(h, "filter"), 60)});
    // Fleet mode: which proxy holds the client's connection.
    if (h.contains("owner")) rows.back().push_back(field(h, "owner"));
  }
  if (rows.empty()) {
    std::cout << "no pending holds\n";
    return;
  }
  std::vector<std::string> headers{"ID",  "NAMESPACE", "OP",      "CLIENT", "USER",
                                   "APP", "DOCS",      "WAITING", "RULE",   "FILTER"};
  if (data.contains("fleet")) headers.push_back("PROXY");
  std::cout << format_table(headers, rows);
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

std::optional<std::string> read_token(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  const auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return std::string();
  const auto last = token.find_last_not_of(" \t\r\n");
  return token.substr(first, last - first + 1);
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

int ctl_main(int argc, char** argv) {
  std::string admin = "http://127.0.0.1:9901";
  std::string token_file;
  if (const char* env = std::getenv("MONGOGUARD_ADMIN_TOKEN_FILE"); env && *env) token_file = env;
  std::string ca_file;
  if (const char* env = std::getenv("MONGOGUARD_ADMIN_CA_FILE"); env && *env) ca_file = env;
  if (token_file.empty()) token_file = "/etc/mongoguard/admin.token";
  std::string as;
  if (const char* user = std::getenv("USER"); user) as = user;
  bool raw = false;
  std::optional<std::string> documents, minutes, limit;
  std::vector<std::string> words;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0) {
      if (auto eq = arg.find('='); eq != std::string::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    }
    auto value = [&](std::string& out) {
      if (inline_value) {
        out = *inline_value;
        return true;
      }
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string v;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsageText, stdout);
      return kOk;
    } else if (arg == "--json") {
      raw = true;
    } else if (arg == "--admin" || arg == "--token-file" || arg == "--as" || arg == "--documents" ||
               arg == "--minutes" || arg == "--limit" || arg == "--ca-file") {
      if (!value(v)) return usage(arg + " needs a value");
      if (arg == "--ca-file") ca_file = v;
      if (arg == "--admin") admin = v;
      if (arg == "--token-file") token_file = v;
      if (arg == "--as") as = v;
      if (arg == "--documents") documents = v;
      if (arg == "--minutes") minutes = v;
      if (arg == "--limit") limit = v;
    } else if (arg.rfind("--", 0) == 0) {
      return usage("unknown option " + arg);
    } else {
      words.push_back(arg);
    }
  }
  if (words.empty()) return usage("no command given");
  const std::string command = words[0];
  const bool takes_name = command == "approve" || command == "reject" || command == "grant" ||
                          command == "reset" || command == "approve-all" || command == "reject-all";
  const bool bare =
      command == "holds" || command == "breakers" || command == "decisions" || command == "reload";
  if (!takes_name && !bare) return usage("unknown command " + command);
  if (takes_name && words.size() != 2) return usage(command + " needs exactly one argument");
  if (bare && words.size() != 1) return usage(command + " takes no argument");
  if ((documents || minutes) && command != "grant") {
    return usage("--documents and --minutes go with grant");
  }
  if (limit && command != "decisions") return usage("--limit goes with decisions");

  Endpoint base;
  base.ca_file = ca_file;
  {
    // https://: the same URL shape over TLS, port 443 unless given.
    std::string as_http = admin;
    constexpr std::string_view kHttps = "https://";
    if (admin.size() > kHttps.size() &&
        std::equal(kHttps.begin(), kHttps.end(), admin.begin(), [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        })) {
      base.https = true;
      as_http = "http://" + admin.substr(kHttps.size());
    }
    auto url = proxy::parse_http_url(as_http);
    if (!url) return usage("--admin must be an http(s)://HOST:PORT URL, not " + admin);
    base.url = *url;
    if (base.https) {
      const std::string authority = as_http.substr(7, as_http.find_first_of("/?#", 7) - 7);
      const auto bracket = authority.rfind(']');
      if (authority.find(':', bracket == std::string::npos ? 0 : bracket) == std::string::npos) {
        base.url.port = "443";
      }
    }
  }
  if (!base.https && !ca_file.empty() && std::getenv("MONGOGUARD_ADMIN_CA_FILE") == nullptr) {
    return usage("--ca-file goes with an https:// --admin URL");
  }

  // Build the request.
  http::verb method = http::verb::get;
  std::string path;
  json body = json::object();
  const bool acts = takes_name || command == "reload";
  if (takes_name && as.empty()) return usage("say who you are with --as NAME ($USER is unset)");
  if (acts && !as.empty()) body["by"] = as;
  if (command == "holds") {
    path = "/api/holds";
  } else if (command == "breakers") {
    path = "/api/breakers";
  } else if (command == "decisions") {
    path = "/api/decisions";
    if (limit) {
      if (limit->empty() || limit->find_first_not_of("0123456789") != std::string::npos ||
          std::stoll(limit->substr(0, 9)) == 0) {
        return usage("--limit needs a positive integer");
      }
      path += "?limit=" + *limit;
    }
  } else if (command == "reload") {
    method = http::verb::post;
    path = "/api/reload";
  } else if (command == "approve" || command == "reject") {
    method = http::verb::post;
    path = "/api/holds/" + url_encode(words[1]) + "/" + command;
  } else {
    method = http::verb::post;
    path = "/api/breakers/" + url_encode(words[1]) + "/" + command;
    if (command == "grant") {
      if (!documents && !minutes) return usage("grant needs --documents N and/or --minutes T");
      try {
        std::size_t used = 0;
        if (documents) {
          const long long n = std::stoll(*documents, &used);
          if (used != documents->size() || n <= 0) throw std::invalid_argument("documents");
          body["documents"] = n;
        }
        if (minutes) {
          const double t = std::stod(*minutes, &used);
          if (used != minutes->size() || !(t > 0)) throw std::invalid_argument("minutes");
          body["minutes"] = t;
        }
      } catch (const std::exception&) {
        return usage("--documents needs a positive integer, --minutes a positive number");
      }
    }
  }

  auto token = read_token(token_file);
  if (!token) return usage("cannot read the token file " + token_file);

  Reply reply;
  try {
    reply = request(base, *token, method, path, method == http::verb::post ? body.dump() : "");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mongoguard ctl: cannot reach %s: %s\n", admin.c_str(), e.what());
    return kApiError;
  }
  json data = json::parse(reply.body, nullptr, false);
  if (reply.status < 200 || reply.status >= 300) {
    std::string message = "HTTP " + std::to_string(reply.status);
    if (data.is_object() && data.contains("error")) message = field(data, "error");
    std::fprintf(stderr, "mongoguard ctl: %s\n", message.c_str());
    if (data.is_object() && data.contains("errors")) {
      for (const auto& line : data["errors"]) std::fprintf(stderr, "%s\n", str(line).c_str());
    }
    if (raw && !data.is_discarded()) std::cout << data.dump(2) << "\n";
    return kApiError;
  }
  if (data.is_discarded()) {
    std::fprintf(stderr, "mongoguard ctl: the admin endpoint answered with something not JSON\n");
    return kApiError;
  }
  if (raw) {
    std::cout << proxy::dump_json(data) << "\n";
    return kOk;
  }
  if (command == "holds") {
    print_holds(data);
  } else if (command == "breakers") {
    print_breakers(data);
  } else if (command == "decisions") {
    print_decisions(data);
  } else if (command == "reload") {
    std::cout << "configuration reloaded\n";
  } else if (command == "approve" || command == "reject") {
    std::cout << "hold " << field(data, "id") << " " << field(data, "outcome") << " by "
              << field(data, "by") << "\n";
  } else if (command == "approve-all" || command == "reject-all") {
    std::cout << field(data, "resolved") << " hold(s) on " << words[1] << " "
              << field(data, "outcome") << " by " << field(data, "by") << "\n";
  } else if (command == "reset") {
    std::cout << "breaker " << words[1] << " reset\n";
  } else {
    const auto& b = data.value("breaker", json::object());
    const auto& a = b.value("allowance", json::object());
    std::cout << "breaker " << words[1] << ": allowance " << field(a, "documents")
              << " document(s)";
    if (a.contains("expires_in_seconds") && a["expires_in_seconds"].is_number()) {
      std::cout << ", free passage for " << seconds_text(a["expires_in_seconds"]);
    }
    std::cout << "\n";
  }
  return kOk;
}

}  // namespace mongoguard::tools
