#include "config/token_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace mongoguard::config {
namespace {

TEST(TokenFileTest, WhitespaceAroundTheTokenIsIgnored) {
  for (const char* text : {"s3cret", "s3cret\n", "s3cret\r\n", "  s3cret \t\n", "\n\ns3cret\n\n"}) {
    const auto read = parse_token_text(text, "t.token");
    EXPECT_TRUE(read.ok()) << read.error;
    EXPECT_EQ(read.token, "s3cret") << text;
  }
}

TEST(TokenFileTest, AnEmptyFileIsRefused) {
  for (const char* text : {"", "\n", "  \r\n\t\n"}) {
    const auto read = parse_token_text(text, "t.token");
    EXPECT_FALSE(read.ok());
    EXPECT_EQ(read.token, "");
    EXPECT_EQ(read.error, "the token file t.token is empty");
  }
}

TEST(TokenFileTest, TwoNonEmptyLinesAreRefused) {
  for (const char* text : {"one\ntwo\n", "one\n\n two", "one\r\ntwo\r\n"}) {
    const auto read = parse_token_text(text, "t.token");
    EXPECT_FALSE(read.ok());
    EXPECT_EQ(read.token, "");
    EXPECT_EQ(read.error,
              "the token file t.token has more than one non-empty line; it must hold the token "
              "alone");
  }
}

TEST(TokenFileTest, ReadsAFileAndNamesOneItCannotRead) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "token_file_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "admin.token").string();
  std::ofstream(path) << "abc\n";
  const auto read = read_token_file(path);
  EXPECT_TRUE(read.ok()) << read.error;
  EXPECT_EQ(read.token, "abc");

  const auto missing = read_token_file((dir / "missing").string());
  EXPECT_EQ(missing.error, "cannot read the token file " + (dir / "missing").string() +
                               ": No such file or directory");
  const auto directory = read_token_file(dir.string());
  EXPECT_EQ(directory.error, "cannot read the token file " + dir.string() + ": it is a directory");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mongoguard::config
