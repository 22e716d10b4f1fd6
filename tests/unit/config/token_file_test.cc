#include "config/token_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace mongoguard::config {
namespace {

TEST(TokenFileTest, WhitespaceAroundTheTokenIsIgnored) {
  for (const char* text :
       {"s3cret-s3cret-s3", "s3cret-s3cret-s3\n", "s3cret-s3cret-s3\r\n", "  s3cret-s3cret-s3 \t\n",
        "\n\ns3cret-s3cret-s3\n\n", "\xef\xbb\xbfs3cret-s3cret-s3\r\n"}) {
    const auto read = parse_token_text(text, "t.token");
    EXPECT_TRUE(read.ok()) << read.error;
    EXPECT_EQ(read.token, "s3cret-s3cret-s3") << text;
  }
}

TEST(TokenFileTest, AShortTokenIsRefused) {
  const auto read = parse_token_text("s3cret\n", "t.token");
  EXPECT_EQ(read.token, "");
  EXPECT_EQ(read.error,
            "the token in t.token is 6 characters long; a token must have at least 16 (make one "
            "with: head -c 24 /dev/urandom | base64)");
}

TEST(TokenFileTest, ThePasswordFileNamesItselfSo) {
  const auto read = parse_token_text("a\nb\n", "redis.password", "password");
  EXPECT_EQ(read.error,
            "the password file redis.password has more than one non-empty line; it must hold "
            "the password alone");
  EXPECT_EQ(parse_token_text("short\n", "redis.password", "password").error,
            "the password in redis.password is 5 characters long; a password must have at least "
            "16 (make one with: head -c 24 /dev/urandom | base64)");
}

TEST(TokenFileTest, SpacesAndBytesOutsidePrintableAsciiAreRefused) {
  for (const char* text :
       {"two words in one token", "token-with-a-tab\there", "caf\xc3\xa9-caf\xc3\xa9-caf\xc3\xa9-x",
        "a-long-token\x01-with-a-ctl"}) {
    const auto read = parse_token_text(text, "t.token");
    EXPECT_EQ(read.token, "") << text;
    EXPECT_EQ(read.error,
              "the token file t.token holds a space, a control character or a byte that is not "
              "printable ASCII; a token is one word of printable ASCII")
        << text;
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
  std::ofstream(path) << "abcdefghijklmnop\n";
  const auto read = read_token_file(path);
  EXPECT_TRUE(read.ok()) << read.error;
  EXPECT_EQ(read.token, "abcdefghijklmnop");

  const auto missing = read_token_file((dir / "missing").string());
  EXPECT_EQ(missing.error, "cannot read the token file " + (dir / "missing").string() +
                               ": No such file or directory");
  const auto directory = read_token_file(dir.string());
  EXPECT_EQ(directory.error, "cannot read the token file " + dir.string() + ": it is a directory");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mongoguard::config
