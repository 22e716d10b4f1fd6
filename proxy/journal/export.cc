#include "proxy/journal/export.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <utility>

namespace mongoguard::journal {

namespace {

namespace fs = std::filesystem;

// Characters Go's url.PathEscape leaves as they are.
bool kept_in_path_segment(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-_.~$&+:=@").find(c) != std::string_view::npos;
}

void write_file(const fs::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(path.string() + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      ::close(fd);
      throw std::runtime_error(path.string() + ": " + std::strerror(saved));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) throw std::runtime_error(path.string() + ": " + std::strerror(errno));
}

// The rows of each namespace to write, oldest first, one per _id.
std::map<std::string, std::vector<const Row*>> oldest_per_id(const std::vector<Row>& rows) {
  std::vector<const Row*> ordered;
  for (const auto& row : rows) ordered.push_back(&row);
  std::sort(ordered.begin(), ordered.end(),
            [](const Row* a, const Row* b) { return written_before(*a, *b); });
  std::map<std::string, std::vector<const Row*>> by_ns;
  std::set<std::pair<std::string, Bson>> seen;
  for (const Row* row : ordered) {
    if (seen.insert({row->ns, row->doc_id}).second) by_ns[row->ns].push_back(row);
  }
  return by_ns;
}

void export_namespace(const std::string& ns, const std::vector<const Row*>& rows,
                      const fs::path& dir, ExportResult& result) {
  const auto dot = ns.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == ns.size()) {
    throw std::runtime_error("not a namespace: " + ns);
  }
  const std::string db = ns.substr(0, dot);
  const std::string collection = ns.substr(dot + 1);
  const fs::path folder = dir / db;
  fs::create_directories(folder);
  std::string bson;
  for (const Row* row : rows) bson.append(row->before.begin(), row->before.end());
  const std::string base = escape_collection_name(collection);
  write_file(folder / (base + ".bson"), bson);
  write_file(folder / (base + ".metadata.json"), collection_metadata_json(collection));
  result.files.push_back((folder / (base + ".bson")).string());
  result.files.push_back((folder / (base + ".metadata.json")).string());
  result.documents += rows.size();
}

}  // namespace

std::string escape_collection_name(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : name) {
    if (kept_in_path_segment(c)) {
      out += c;
      continue;
    }
    const auto byte = static_cast<unsigned char>(c);
    out += '%';
    out += kHex[byte >> 4];
    out += kHex[byte & 0xf];
  }
  return out;
}

std::string collection_metadata_json(std::string_view collection) {
  // The field order mongodump writes; nlohmann's ordered_json keeps it.
  nlohmann::ordered_json metadata;
  metadata["indexes"] = nlohmann::ordered_json::array();
  metadata["collectionName"] = std::string(collection);
  metadata["type"] = "collection";
  return metadata.dump();
}

ExportResult export_dump(const std::vector<Row>& rows, const std::string& dir) {
  ExportResult result;
  try {
    for (const auto& [ns, ns_rows] : oldest_per_id(rows)) {
      export_namespace(ns, ns_rows, dir, result);
    }
    result.ok = true;
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  return result;
}

}  // namespace mongoguard::journal
