#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace mongoguard::config {

std::string ConfigError::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  void error(const YAML::Node& node, std::string message) {
    const auto mark = node.Mark();
    errors_.push_back({file_, mark.line + 1, mark.column + 1, std::move(message)});
  }

  std::optional<std::string> scalar(const YAML::Node& node, std::string_view key) {
    if (!node.IsScalar()) {
      error(node, std::string(key) + " must be a string");
      return std::nullopt;
    }
    return node.Scalar();
  }

  void check_keys(const YAML::Node& map, const std::set<std::string>& allowed,
                  std::string_view where) {
    for (const auto& item : map) {
      const auto key = item.first.Scalar();
      if (!allowed.count(key)) {
        std::string known;
        for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
        error(item.first, "unknown key '" + key + "' in " + std::string(where) + " (known: " +
                              known + ")");
      }
    }
  }

  Config parse(const YAML::Node& root) {
    Config config;
    if (root.IsNull()) return config;
    if (!root.IsMap()) {
      error(root, "the configuration must be a mapping of keys");
      return config;
    }
    check_keys(root, {"listen", "upstream", "threads", "log_level", "admin"}, "the top level");
    if (auto n = root["listen"]) config.listen = scalar(n, "listen");
    if (auto n = root["upstream"]) config.upstream = scalar(n, "upstream");
    if (auto n = root["log_level"]) {
      config.log_level = scalar(n, "log_level");
      static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error", "off"};
      if (config.log_level && !levels.count(*config.log_level)) {
        error(n, "log_level must be one of trace, debug, info, warn, error, off");
      }
    }
    if (auto n = root["threads"]) {
      unsigned value = 0;
      if (!n.IsScalar() || !YAML::convert<unsigned>::decode(n, value) || value == 0 ||
          value > 1024) {
        error(n, "threads must be a whole number between 1 and 1024");
      } else {
        config.threads = value;
      }
    }
    if (auto admin = root["admin"]) {
      if (!admin.IsMap()) {
        error(admin, "admin must be a mapping");
      } else {
        check_keys(admin, {"listen"}, "admin");
        if (auto n = admin["listen"]) config.admin_listen = scalar(n, "admin.listen");
      }
    }
    return config;
  }

  std::vector<ConfigError> take_errors() { return std::move(errors_); }

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

}  // namespace

LoadResult parse_config(std::string_view text, std::string_view file_name) {
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    result.errors.push_back(
        {std::string(file_name), e.mark.line + 1, e.mark.column + 1, e.msg});
    return result;
  }
  Parser parser(file_name);
  auto config = parser.parse(root);
  result.errors = parser.take_errors();
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

LoadResult load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, std::string("cannot read file: ") + std::strerror(errno)});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace mongoguard::config
