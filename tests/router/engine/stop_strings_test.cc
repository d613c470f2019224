#include "router/engine/stop_strings.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace duet::engine {
namespace {

// Feeds `pieces` one at a time; returns what was released, "|" between calls.
std::string Feed(StopStringMatcher& matcher, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& piece : pieces) out += matcher.Add(piece) + "|";
  return out;
}

TEST(StopStringMatcherTest, HoldsBackWhatMightStartAStop) {
  StopStringMatcher matcher({"STOP"});
  EXPECT_EQ(Feed(matcher, {"abc S", "T", "x"}), "abc ||STx|");
  EXPECT_FALSE(matcher.matched());
  EXPECT_EQ(matcher.Flush(), "");
}

TEST(StopStringMatcherTest, CutsRightBeforeAMatchAcrossPieces) {
  StopStringMatcher matcher({"STOP"});
  EXPECT_EQ(Feed(matcher, {"hello S", "TO", "P and more", "ignored"}), "hello ||||");
  EXPECT_EQ(matcher.matched(), "STOP");
  EXPECT_EQ(matcher.Flush(), "");
}

TEST(StopStringMatcherTest, TheEarliestMatchWins) {
  StopStringMatcher matcher({"world", "lo w"});
  EXPECT_EQ(matcher.Add("hello world"), "hel");
  EXPECT_EQ(matcher.matched(), "lo w");
}

TEST(StopStringMatcherTest, FlushReleasesAPartialMatch) {
  StopStringMatcher matcher({"</answer>"});
  EXPECT_EQ(matcher.Add("42 </ans"), "42 ");
  EXPECT_EQ(matcher.Flush(), "</ans");
}

TEST(StopStringMatcherTest, MultiByteStopStrings) {
  StopStringMatcher matcher({"。\n"});
  EXPECT_EQ(matcher.Add("你好。"), "你好");
  EXPECT_EQ(matcher.Add("\n"), "");
  EXPECT_EQ(matcher.matched(), "。\n");
}

TEST(StopStringMatcherTest, NoStopsReleasesEverything) {
  StopStringMatcher matcher({});
  EXPECT_EQ(matcher.Add("abc"), "abc");
  EXPECT_EQ(matcher.Flush(), "");
}

}  // namespace
}  // namespace duet::engine
