#include "router/api/api_keys.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "common/str_cat.h"
#include "glog/logging.h"

namespace duet::api {
namespace {

constexpr size_t kMinKeyLength = 8;
constexpr size_t kMaxKeyLength = 256;
constexpr size_t kMaxNameLength = 64;
constexpr int64_t kMaxLimit = 1'000'000;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

bool ValidKey(std::string_view key) {
  if (key.size() < kMinKeyLength || key.size() > kMaxKeyLength) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < line.size()) {
    while (pos < line.size() && IsSpace(line[pos])) ++pos;
    const size_t start = pos;
    while (pos < line.size() && !IsSpace(line[pos])) ++pos;
    if (pos > start) fields.push_back(line.substr(start, pos - start));
  }
  return fields;
}

bool ParseLimit(std::string_view text, int32_t* out) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0 || value > kMaxLimit) return false;
  *out = static_cast<int32_t>(value);
  return true;
}

std::string RandomSecret() {
  std::random_device device;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    uint32_t bits = device();
    for (int j = 0; j < 4; ++j, bits >>= 4) out += kDigits[bits & 0xF];
  }
  return out;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t length = std::max(a.size(), b.size());
  for (size_t i = 0; i < length; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

absl::StatusOr<std::vector<ApiKeySpec>> ParseApiKeys(std::string_view text) {
  std::vector<ApiKeySpec> specs;
  absl::flat_hash_set<std::string> keys;
  absl::flat_hash_set<std::string> names;
  int line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    const std::vector<std::string_view> fields = Fields(line);
    if (fields.empty() || fields[0][0] == '#') continue;
    auto error = [line_number](std::string_view what) {
      return absl::InvalidArgumentError(StrCat("line ", line_number, ": ", what));
    };
    ApiKeySpec spec;
    if (!ValidKey(fields[0])) {
      return error(StrCat("a key is ", kMinKeyLength, " to ", kMaxKeyLength, " printable characters without spaces"));
    }
    spec.key = std::string(fields[0]);
    spec.name = StrCat("key", specs.size() + 1);
    for (size_t i = 1; i < fields.size(); ++i) {
      const std::string_view field = fields[i];
      const size_t equals = field.find('=');
      const std::string_view option = field.substr(0, equals);
      const std::string_view value = equals == std::string_view::npos ? "" : field.substr(equals + 1);
      if (equals == std::string_view::npos) {
        return error(StrCat("expected name=, rpm= or concurrency= after the key, not '", field, "'"));
      }
      if (option == "name") {
        if (!ValidName(value)) return error("a name is 1 to 64 of A-Z a-z 0-9 _ . -");
        spec.name = std::string(value);
      } else if (option == "rpm") {
        if (!ParseLimit(value, &spec.requests_per_minute)) return error("rpm must be an integer from 0 to 1000000");
      } else if (option == "concurrency") {
        if (!ParseLimit(value, &spec.max_concurrent_requests)) {
          return error("concurrency must be an integer from 0 to 1000000");
        }
      } else {
        return error(StrCat("unknown option '", option, "' (name, rpm, concurrency)"));
      }
    }
    if (!keys.insert(spec.key).second) return error("the key is already in the file");
    if (!names.insert(spec.name).second) return error(StrCat("the name '", spec.name, "' is already in use"));
    specs.push_back(std::move(spec));
  }
  if (specs.empty()) return absl::InvalidArgumentError("no keys");
  return specs;
}

absl::StatusOr<std::vector<ApiKeySpec>> ReadApiKeysFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<ApiKeySpec>> specs = ParseApiKeys(text.str());
  if (!specs.ok()) return absl::InvalidArgumentError(StrCat(path, ": ", specs.status().message()));
  return specs;
}

TenantLease& TenantLease::operator=(TenantLease&& other) noexcept {
  if (this != &other) {
    Release();
    tenant_ = other.tenant_;
    other.tenant_ = nullptr;
  }
  return *this;
}

void TenantLease::Release() {
  if (tenant_ == nullptr) return;
  absl::MutexLock lock(&tenant_->mu_);
  --tenant_->in_flight_;
  tenant_ = nullptr;
}

ApiKeys::ApiKeys(std::vector<ApiKeySpec> specs, ApiKeysOptions options) : options_(std::move(options)) {
  CHECK(!specs.empty());
  const absl::Time now = options_.clock();
  // Unknown outside this process: no request's own salt can be chosen to
  // collide with another tenant's.
  const std::string secret = RandomSecret();
  const bool isolate = options_.isolate_prefix_caches && specs.size() > 1;
  for (ApiKeySpec& spec : specs) {
    auto tenant = std::unique_ptr<Tenant>(new Tenant(std::move(spec), now));
    if (isolate) tenant->cache_salt_ = StrCat("tenant:", secret, ":", tenant->name());
    tenants_.push_back(std::move(tenant));
  }
}

Tenant* ApiKeys::Authenticate(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.substr(0, kBearer.size()) != kBearer) return nullptr;
  const std::string_view given = authorization.substr(kBearer.size());
  Tenant* found = nullptr;
  for (const std::unique_ptr<Tenant>& tenant : tenants_) {
    // No early exit: the time taken does not tell which key matched.
    if (ConstantTimeEquals(given, tenant->spec_.key)) found = tenant.get();
  }
  return found;
}

ApiKeys::Admission ApiKeys::Admit(Tenant& tenant) const {
  Admission admission;
  const ApiKeySpec& spec = tenant.spec_;
  absl::MutexLock lock(&tenant.mu_);
  if (spec.max_concurrent_requests > 0 && tenant.in_flight_ >= spec.max_concurrent_requests) {
    admission.limit = "concurrency";
    return admission;
  }
  if (spec.requests_per_minute > 0) {
    const absl::Time now = options_.clock();
    const double per_second = spec.requests_per_minute / 60.0;
    const double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - tenant.refilled_));
    tenant.tokens_ = std::min<double>(spec.requests_per_minute, tenant.tokens_ + elapsed * per_second);
    tenant.refilled_ = now;
    if (tenant.tokens_ < 1.0) {
      admission.limit = "rate";
      admission.retry_after = absl::Seconds((1.0 - tenant.tokens_) / per_second);
      return admission;
    }
    tenant.tokens_ -= 1.0;
  }
  ++tenant.in_flight_;
  admission.admitted = true;
  admission.lease = TenantLease(&tenant);
  return admission;
}

std::vector<std::string> ApiKeys::names() const {
  std::vector<std::string> out;
  for (const std::unique_ptr<Tenant>& tenant : tenants_) out.push_back(tenant->name());
  return out;
}

std::string ApiKeys::CacheSalt(const Tenant* tenant, std::string_view request_salt) const {
  if (tenant == nullptr || tenant->cache_salt_.empty()) return std::string(request_salt);
  if (request_salt.empty()) return tenant->cache_salt_;
  return StrCat(tenant->cache_salt_, "\x1f", request_salt);
}

}  // namespace duet::api
