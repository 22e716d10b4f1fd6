#include "bson/text.h"

#include <gtest/gtest.h>

#include <string>

namespace mongoguard::wire {
namespace {

TEST(Utf8, WellFormedTextIsValid) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("family.delete()"));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_TRUE(valid_utf8(std::string_view("a\0b", 3)));
}

TEST(Utf8, BrokenSequencesAreNot) {
  EXPECT_FALSE(valid_utf8("ghost\xc3"));         // truncated
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("\x80"));              // a lone continuation byte
  EXPECT_FALSE(valid_utf8("\xff"));
}

// The check reads ASCII eight bytes at a time: a sequence, good or broken,
// keeps its verdict wherever it falls against those eight-byte steps.
TEST(Utf8, ASequenceIsJudgedTheSameAtEveryOffset) {
  const std::string_view good[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  const std::string_view bad[] = {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "\x80", "\xff", "\xe2\x82"};
  for (std::size_t before = 0; before < 18; ++before) {
    for (std::size_t after = 0; after < 10; ++after) {
      const std::string head(before, 'a');
      const std::string tail(after, 'z');
      for (const auto s : good) {
        EXPECT_TRUE(valid_utf8(head + std::string(s) + tail)) << before << "+" << after;
      }
      for (const auto s : bad) {
        EXPECT_FALSE(valid_utf8(head + std::string(s) + tail)) << before << "+" << after;
      }
    }
  }
}

TEST(Utf8, RepairReplacesEachBadByte) {
  EXPECT_EQ(utf8_repaired("ghost\xc3"), "ghost\xef\xbf\xbd");
  EXPECT_EQ(utf8_repaired("a\xff\xfe"
                          "b"),
            "a\xef\xbf\xbd\xef\xbf\xbd"
            "b");
  EXPECT_EQ(utf8_repaired("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_TRUE(valid_utf8(utf8_repaired("\xe2\x82 \xf0\x9f\x98")));
}

TEST(ControlEscaped, SpellsOutWhatATerminalActsOn) {
  EXPECT_EQ(control_escaped("plain app"), "plain app");
  EXPECT_EQ(control_escaped("a\r\nINFO forged"), "a\\x0d\\x0aINFO forged");
  EXPECT_EQ(control_escaped("\x1b[2K\x1b[1Ano pending holds"), "\\x1b[2K\\x1b[1Ano pending holds");
  EXPECT_EQ(control_escaped("tab\there\x7f"), "tab\\x09here\\x7f");
  EXPECT_EQ(control_escaped("csi\xc2\x9b"
                            "2J"),
            "csi\\xc2\\x9b2J");
  EXPECT_EQ(control_escaped("bad\xc3"), "bad\\xc3");
  EXPECT_EQ(control_escaped("caf\xc3\xa9 \\x41"), "caf\xc3\xa9 \\x41");
}

TEST(ControlEscaped, PrintableSaysWhetherItChanges) {
  EXPECT_TRUE(printable("db.families"));
  EXPECT_TRUE(printable("caf\xc3\xa9"));
  EXPECT_FALSE(printable("a\nb"));
  EXPECT_FALSE(printable("\xc2\x85"));
  EXPECT_FALSE(printable("\xc3"));
}

}  // namespace
}  // namespace mongoguard::wire
