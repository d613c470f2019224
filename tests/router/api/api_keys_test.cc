#include "router/api/api_keys.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace duet::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<ApiKeySpec> Parse(const std::string& text) {
  absl::StatusOr<std::vector<ApiKeySpec>> specs = ParseApiKeys(text);
  EXPECT_TRUE(specs.ok()) << specs.status();
  return specs.ok() ? *std::move(specs) : std::vector<ApiKeySpec>();
}

std::string ParseError(const std::string& text) {
  absl::StatusOr<std::vector<ApiKeySpec>> specs = ParseApiKeys(text);
  EXPECT_FALSE(specs.ok()) << text;
  return specs.ok() ? "" : std::string(specs.status().message());
}

TEST(ParseApiKeysTest, KeysNamesAndLimits) {
  const std::vector<ApiKeySpec> specs = Parse(
      "# tenants\n"
      "\n"
      "sk-alice-0001 name=alice rpm=60 concurrency=4\n"
      "  sk-bob-000002\t\r\n"
      "sk-carol-0003 concurrency=0 name=carol.team-1\n");
  ASSERT_EQ(specs.size(), 3u);
  EXPECT_EQ(specs[0].key, "sk-alice-0001");
  EXPECT_EQ(specs[0].name, "alice");
  EXPECT_EQ(specs[0].requests_per_minute, 60);
  EXPECT_EQ(specs[0].max_concurrent_requests, 4);
  EXPECT_EQ(specs[1].key, "sk-bob-000002");
  EXPECT_EQ(specs[1].name, "key2");  // its place among the keys
  EXPECT_EQ(specs[1].requests_per_minute, 0);
  EXPECT_EQ(specs[2].name, "carol.team-1");
}

TEST(ParseApiKeysTest, ErrorsNameTheLineNeverTheKey) {
  EXPECT_THAT(ParseError("sk-secret-key rpm=-1\n"), HasSubstr("line 1: rpm"));
  EXPECT_THAT(ParseError("# c\nsk-secret-key concurrency=2x\n"), HasSubstr("line 2: concurrency"));
  EXPECT_THAT(ParseError("sk-secret-key rpm=99999999\n"), HasSubstr("rpm"));
  EXPECT_THAT(ParseError("short\n"), HasSubstr("line 1: a key is 8 to 256"));
  EXPECT_THAT(ParseError(std::string(257, 'k') + "\n"), HasSubstr("a key is"));
  EXPECT_THAT(ParseError("sk-secret-k\xc3\xa9y\n"), HasSubstr("a key is"));
  EXPECT_THAT(ParseError("sk-secret-key name=a/b\n"), HasSubstr("a name is"));
  EXPECT_THAT(ParseError("sk-secret-key name=\n"), HasSubstr("a name is"));
  EXPECT_THAT(ParseError("sk-secret-key alice\n"), HasSubstr("expected name=, rpm= or concurrency="));
  EXPECT_THAT(ParseError("sk-secret-key tpm=5\n"), HasSubstr("unknown option 'tpm'"));
  EXPECT_THAT(ParseError("sk-secret-key\nsk-secret-key\n"), HasSubstr("line 2: the key is already in the file"));
  EXPECT_THAT(ParseError("sk-secret-key name=a\nsk-secret-key2 name=a\n"), HasSubstr("line 2: the name 'a'"));
  EXPECT_THAT(ParseError("sk-one-key-1\nsk-two-key-2 name=key1\n"), HasSubstr("already in use"));
  EXPECT_THAT(ParseError("# only comments\n\n"), HasSubstr("no keys"));
  EXPECT_THAT(ParseError(""), HasSubstr("no keys"));
  for (const std::string& bad : {"sk-secret-key rpm=-1\n", "sk-secret-key\nsk-secret-key\n"}) {
    EXPECT_THAT(ParseError(bad), Not(HasSubstr("sk-secret")));
  }
}

TEST(ParseApiKeysTest, MissingFile) {
  EXPECT_FALSE(ReadApiKeysFile("/nonexistent/keys").ok());
}

TEST(ConstantTimeEqualsTest, ComparesEveryByteAndTheLength) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("ab\0", 3), "ab"));
}

class ApiKeysTest : public ::testing::Test {
 protected:
  std::unique_ptr<ApiKeys> Make(const std::string& text, bool isolate = true) {
    ApiKeysOptions options;
    options.isolate_prefix_caches = isolate;
    options.clock = [this] { return now_; };
    return std::make_unique<ApiKeys>(Parse(text), std::move(options));
  }

  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(ApiKeysTest, AuthenticateFindsTheTenantOfABearerToken) {
  auto keys = Make("sk-alice-0001 name=alice\nsk-bob-000002 name=bob\n");
  ASSERT_NE(keys->Authenticate("Bearer sk-alice-0001"), nullptr);
  EXPECT_EQ(keys->Authenticate("Bearer sk-alice-0001")->name(), "alice");
  EXPECT_EQ(keys->Authenticate("Bearer sk-bob-000002")->name(), "bob");
  EXPECT_EQ(keys->Authenticate("Bearer sk-bob-00000"), nullptr);
  EXPECT_EQ(keys->Authenticate("Bearer sk-bob-0000022"), nullptr);
  EXPECT_EQ(keys->Authenticate("sk-bob-000002"), nullptr);
  EXPECT_EQ(keys->Authenticate("Basic sk-bob-000002"), nullptr);
  EXPECT_EQ(keys->Authenticate("Bearer "), nullptr);
  EXPECT_EQ(keys->Authenticate(""), nullptr);
  EXPECT_EQ(keys->names(), (std::vector<std::string>{"alice", "bob"}));
}

TEST_F(ApiKeysTest, RateLimitIsATokenBucketOfAMinute) {
  auto keys = Make("sk-alice-0001 rpm=3\n");
  Tenant& alice = *keys->Authenticate("Bearer sk-alice-0001");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(keys->Admit(alice).admitted) << i;  // a minute's worth at once
  ApiKeys::Admission refused = keys->Admit(alice);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.limit, "rate");
  EXPECT_EQ(refused.retry_after, absl::Seconds(20));
  now_ += absl::Seconds(10);
  refused = keys->Admit(alice);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.retry_after, absl::Seconds(10));
  now_ += absl::Seconds(10);
  EXPECT_TRUE(keys->Admit(alice).admitted);
  EXPECT_FALSE(keys->Admit(alice).admitted);
  now_ += absl::Hours(1);  // refills to a minute's worth, no more
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(keys->Admit(alice).admitted) << i;
  EXPECT_FALSE(keys->Admit(alice).admitted);
}

TEST_F(ApiKeysTest, ConcurrencyLimitCountsLeases) {
  auto keys = Make("sk-alice-0001 concurrency=2 rpm=60\nsk-bob-000002\n");
  Tenant& alice = *keys->Authenticate("Bearer sk-alice-0001");
  ApiKeys::Admission first = keys->Admit(alice);
  ApiKeys::Admission second = keys->Admit(alice);
  ASSERT_TRUE(first.admitted && second.admitted);
  for (int i = 0; i < 100; ++i) {
    ApiKeys::Admission refused = keys->Admit(alice);
    EXPECT_FALSE(refused.admitted);
    EXPECT_EQ(refused.limit, "concurrency");
  }
  first.lease.Release();
  first.lease.Release();  // once only
  // The refusals took nothing from the rate: 58 more fit in this minute,
  // each released (moved out and destroyed) before the next.
  for (int i = 0; i < 57; ++i) {
    ApiKeys::Admission next = keys->Admit(alice);
    ASSERT_TRUE(next.admitted) << i;
    TenantLease moved = std::move(next.lease);
  }
  ApiKeys::Admission last = keys->Admit(alice);
  EXPECT_TRUE(last.admitted);
  EXPECT_EQ(keys->Admit(alice).limit, "concurrency");
  { TenantLease gone = std::move(second.lease); }
  EXPECT_EQ(keys->Admit(alice).limit, "rate");
  // Bob has no limits.
  std::vector<ApiKeys::Admission> bobs;
  for (int i = 0; i < 1000; ++i) bobs.push_back(keys->Admit(*keys->Authenticate("Bearer sk-bob-000002")));
  for (const ApiKeys::Admission& bob : bobs) EXPECT_TRUE(bob.admitted);
}

TEST_F(ApiKeysTest, CacheSaltsSeparateTenantsWhenThereAreSeveral) {
  auto one = Make("sk-alice-0001\n");
  const Tenant* only = one->Authenticate("Bearer sk-alice-0001");
  EXPECT_EQ(one->CacheSalt(only, ""), "");
  EXPECT_EQ(one->CacheSalt(only, "mine"), "mine");
  EXPECT_EQ(one->CacheSalt(nullptr, "mine"), "mine");

  auto two = Make("sk-alice-0001 name=alice\nsk-bob-000002 name=bob\n");
  const Tenant* alice = two->Authenticate("Bearer sk-alice-0001");
  const Tenant* bob = two->Authenticate("Bearer sk-bob-000002");
  EXPECT_NE(two->CacheSalt(alice, ""), "");
  EXPECT_NE(two->CacheSalt(alice, ""), two->CacheSalt(bob, ""));
  EXPECT_NE(two->CacheSalt(alice, "x"), two->CacheSalt(bob, "x"));
  EXPECT_NE(two->CacheSalt(alice, "x"), two->CacheSalt(alice, ""));
  EXPECT_EQ(two->CacheSalt(alice, "x"), two->CacheSalt(alice, "x"));
  // A salt a client can send never equals a tenant's: it holds a secret.
  EXPECT_NE(two->CacheSalt(alice, ""), "tenant::alice");
  auto again = Make("sk-alice-0001 name=alice\nsk-bob-000002 name=bob\n");
  EXPECT_NE(two->CacheSalt(alice, ""), again->CacheSalt(again->Authenticate("Bearer sk-alice-0001"), ""));

  auto shared = Make("sk-alice-0001 name=alice\nsk-bob-000002 name=bob\n", /*isolate=*/false);
  EXPECT_EQ(shared->CacheSalt(shared->Authenticate("Bearer sk-alice-0001"), "x"), "x");
}

}  // namespace
}  // namespace duet::api
