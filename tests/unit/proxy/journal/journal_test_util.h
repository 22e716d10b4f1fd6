// Shared by the journal's tests: a fresh folder per test, BSON from JSON,
// and rows as the store would return them.
#pragma once

#include <bson/bson.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "proxy/journal/entry.h"

namespace mongoguard::journal::testing {

// A folder of its own under the test temp dir, removed afterwards.
class TempFolder {
 public:
  TempFolder() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            (std::string("journal_") + info->test_suite_name() + "_" + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Canonical extended JSON (e.g. {"_id": {"$numberInt": "1"}}) to BSON bytes.
inline Bson bson_of(const std::string& json) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json.data()),
                                   static_cast<ssize_t>(json.size()), &error);
  EXPECT_NE(doc, nullptr) << error.message << " in " << json;
  if (doc == nullptr) return {};
  const std::uint8_t* data = bson_get_data(doc);
  Bson bytes(data, data + doc->len);
  bson_destroy(doc);
  return bytes;
}

}  // namespace mongoguard::journal::testing
