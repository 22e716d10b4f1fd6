#include "proxy/observe/audit_tail.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>

namespace mongoguard::proxy {

namespace {

using nlohmann::json;

constexpr std::size_t kChunk = 64 * 1024;
// Below this a number is seconds: 1e11 s is the year 5138, 1e11 ms is 1973.
constexpr double kSecondsBelow = 1e11;

std::optional<int> digits(std::string_view text, std::size_t at, std::size_t count) {
  if (at + count > text.size()) return std::nullopt;
  int value = 0;
  const auto* first = text.data() + at;
  auto [end, ec] = std::from_chars(first, first + count, value);
  if (ec != std::errc() || end != first + count) return std::nullopt;
  return value;
}

// "+hh:mm", "-hh:mm", "Z": the offset in minutes; nullopt when neither.
std::optional<int> zone_minutes(std::string_view zone) {
  if (zone == "Z" || zone == "z") return 0;
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') return std::nullopt;
  const auto hours = digits(zone, 1, 2);
  const auto minutes = digits(zone, 4, 2);
  if (!hours || !minutes || *hours > 23 || *minutes > 59) return std::nullopt;
  return (zone[0] == '-' ? -1 : 1) * (*hours * 60 + *minutes);
}

// "YYYY-MM-DDTHH:MM:SS[.fff]Z" or with an offset.
std::optional<std::int64_t> iso_ms(std::string_view text) {
  const auto year = digits(text, 0, 4), month = digits(text, 5, 2), day = digits(text, 8, 2);
  const auto hour = digits(text, 11, 2), minute = digits(text, 14, 2), second = digits(text, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || text[13] != ':' ||
      text[16] != ':' || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  using namespace std::chrono;
  const year_month_day date{std::chrono::year(*year),
                            std::chrono::month(static_cast<unsigned>(*month)),
                            std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) return std::nullopt;
  std::size_t at = 19;
  std::int64_t fraction_ms = 0;
  if (at < text.size() && text[at] == '.') {
    std::size_t end = at + 1;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == at + 1) return std::nullopt;
    for (std::size_t i = at + 1; i < at + 4; ++i) {
      fraction_ms = fraction_ms * 10 + (i < end ? text[i] - '0' : 0);
    }
    at = end;
  }
  const auto zone = zone_minutes(text.substr(std::min(at, text.size())));
  if (!zone) return std::nullopt;
  const auto since_epoch = sys_days(date).time_since_epoch() + hours(*hour) + minutes(*minute) +
                           seconds(*second) - minutes(*zone);
  return duration_cast<milliseconds>(since_epoch).count() + fraction_ms;
}

std::optional<std::int64_t> number_ms(const json& value) {
  if (value.is_number_integer()) {
    const auto n = value.get<std::int64_t>();
    return static_cast<double>(n) < kSecondsBelow && n > -kSecondsBelow ? n * 1000 : n;
  }
  if (!value.is_number_float()) return std::nullopt;
  const double n = value.get<double>();
  if (!std::isfinite(n)) return std::nullopt;
  return std::llround(std::abs(n) < kSecondsBelow ? n * 1000.0 : n);
}

bool is_record(std::string_view line) {
  const json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return false;
  const auto time = parsed.find("time");
  return time != parsed.end() && audit_time_ms(*time).has_value();
}

// Takes the lines of `buffer` after its first newline, newest first, into
// `tail`; what is before that newline (a line whose start is not read yet)
// stays in `buffer`. Returns false once `max_records` are found.
bool take_lines(std::string& buffer, AuditTail& tail, std::size_t max_records) {
  std::size_t end = buffer.size();
  for (;;) {
    const auto newline = end == 0 ? std::string::npos : buffer.rfind('\n', end - 1);
    if (newline == std::string::npos) break;
    const std::string_view line(buffer.data() + newline + 1, end - newline - 1);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      if (is_record(line)) {
        tail.records.emplace_back(line);
      } else {
        ++tail.skipped;
      }
    }
    end = newline;
    if (tail.records.size() >= max_records) return false;
  }
  buffer.resize(end);
  return true;
}

}  // namespace

std::optional<std::int64_t> audit_time_ms(const json& time) {
  if (time.is_number()) return number_ms(time);
  if (time.is_string()) return iso_ms(time.get_ref<const std::string&>());
  if (!time.is_object() || time.size() != 1) return std::nullopt;
  const auto date = time.find("$date");
  if (date == time.end()) return std::nullopt;
  if (date->is_number_integer()) return date->get<std::int64_t>();  // milliseconds, always
  if (date->is_string()) return iso_ms(date->get_ref<const std::string&>());
  if (date->is_object()) {
    const auto ms = date->find("$numberLong");
    if (ms == date->end() || !ms->is_string()) return std::nullopt;
    const auto& text = ms->get_ref<const std::string&>();
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
  }
  return std::nullopt;
}

AuditTail read_audit_tail(const std::string& path, std::size_t max_records, std::size_t max_bytes) {
  AuditTail tail;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) {
    tail.missing = true;
    return tail;
  }
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) {
    tail.error = path + ": " + std::strerror(errno);
    return tail;
  }
  auto position = static_cast<std::size_t>(file.tellg());
  std::size_t read = 0;
  // A newline in front of the file's first line, so that it is taken too.
  std::string buffer;
  bool more = max_records > 0;
  while (more && position > 0 && read < max_bytes) {
    const std::size_t size = std::min({kChunk, position, max_bytes - read});
    position -= size;
    read += size;
    std::string chunk(size, '\0');
    file.seekg(static_cast<std::streamoff>(position));
    if (!file.read(chunk.data(), static_cast<std::streamsize>(size))) {
      tail.error = path + ": read failed";
      break;
    }
    buffer.insert(0, chunk);
    if (position == 0) buffer.insert(0, 1, '\n');
    more = take_lines(buffer, tail, max_records);
  }
  tail.whole_file = position == 0 && more;
  std::reverse(tail.records.begin(), tail.records.end());
  return tail;
}

}  // namespace mongoguard::proxy
