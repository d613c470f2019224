// API keys and their limits: who may call the API, and how much.
//
// A keys file (--api-keys-file) has one key per line:
//   KEY [name=NAME] [rpm=N] [concurrency=N]
// Blank lines and lines whose first non-space character is '#' are skipped.
//   KEY          8 to 256 printable ASCII characters, no spaces.
//   name         [A-Za-z0-9_.-]{1,64}; labels the key in logs and /metrics,
//                never in responses; default key<N> (its place in the file).
//   rpm          most generation requests per minute (a token bucket that
//                holds a minute's worth and refills continuously); 0 or
//                absent: no limit.
//   concurrency  most generation requests in flight at once; 0 or absent:
//                no limit.
// Keys and names are unique. Parse errors name the line, never the key.
//
// ApiKeys holds the tenants: Authenticate finds the tenant of a bearer token
// by comparing it with every key in constant time; Admit counts one
// generation request against the tenant's limits and returns a lease that
// gives its concurrency slot back when destroyed; CacheSalt gives a tenant's
// requests a prefix-cache salt of their own when several keys are
// configured, so that no tenant's prompt can hit blocks another computed.
//
// Thread-safe.
#ifndef DUET_ROUTER_API_API_KEYS_H_
#define DUET_ROUTER_API_API_KEYS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace duet::api {

struct ApiKeySpec {
  std::string key;
  std::string name;
  int32_t requests_per_minute = 0;      // 0: no limit
  int32_t max_concurrent_requests = 0;  // 0: no limit
};

// The keys of a keys file's text (format above).
absl::StatusOr<std::vector<ApiKeySpec>> ParseApiKeys(std::string_view text);
// The keys of the file at `path`; errors name the file and the line.
absl::StatusOr<std::vector<ApiKeySpec>> ReadApiKeysFile(const std::string& path);

// Whether `a` and `b` are equal, in a time that depends on their lengths only.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// One key's holder and the state of its limits.
class Tenant {
 public:
  const std::string& name() const { return spec_.name; }
  const ApiKeySpec& spec() const { return spec_; }

 private:
  friend class ApiKeys;
  friend class TenantLease;
  Tenant(ApiKeySpec spec, absl::Time now) : spec_(std::move(spec)), tokens_(spec_.requests_per_minute), refilled_(now) {}

  const ApiKeySpec spec_;
  std::string cache_salt_;  // empty: the tenant shares the prefix cache
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);  // requests the rate limit allows now
  absl::Time refilled_ ABSL_GUARDED_BY(mu_);
  int32_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// One admitted request's concurrency slot; movable, released on destruction.
class TenantLease {
 public:
  TenantLease() = default;
  explicit TenantLease(Tenant* tenant) : tenant_(tenant) {}
  TenantLease(TenantLease&& other) noexcept : tenant_(other.tenant_) { other.tenant_ = nullptr; }
  TenantLease& operator=(TenantLease&& other) noexcept;
  TenantLease(const TenantLease&) = delete;
  TenantLease& operator=(const TenantLease&) = delete;
  ~TenantLease() { Release(); }

  void Release();

 private:
  Tenant* tenant_ = nullptr;
};

struct ApiKeysOptions {
  // With two keys or more, each tenant's requests get a prefix-cache salt of
  // their own (a request's cache_salt is added to it); false lets tenants
  // share cached prefixes.
  bool isolate_prefix_caches = true;
  // The clock the rate limits read (tests pass their own).
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class ApiKeys {
 public:
  // `specs` must be valid (as ParseApiKeys returns them) and not empty.
  explicit ApiKeys(std::vector<ApiKeySpec> specs, ApiKeysOptions options = {});

  ApiKeys(const ApiKeys&) = delete;
  ApiKeys& operator=(const ApiKeys&) = delete;

  // The tenant whose key the Authorization header value carries
  // ("Bearer KEY"), or nullptr. Every key is compared, each in constant time.
  Tenant* Authenticate(std::string_view authorization) const;

  struct Admission {
    bool admitted = false;
    TenantLease lease;         // when admitted
    std::string limit;         // when refused: "rate" or "concurrency"
    absl::Duration retry_after;  // when refused by the rate: until a request is allowed again
  };
  // Counts one generation request against `tenant`'s limits: refused by the
  // concurrency limit first (nothing is counted then), else by the rate.
  Admission Admit(Tenant& tenant) const;

  // The prefix-cache salt of a request of `tenant` (nullptr: no key needed)
  // that asked for `request_salt` (maybe empty).
  std::string CacheSalt(const Tenant* tenant, std::string_view request_salt) const;

  size_t size() const { return tenants_.size(); }
  // Every key's name, in the file's order.
  std::vector<std::string> names() const;

 private:
  const ApiKeysOptions options_;
  std::vector<std::unique_ptr<Tenant>> tenants_;
};

}  // namespace duet::api

#endif  // DUET_ROUTER_API_API_KEYS_H_
