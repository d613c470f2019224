#include "tools/bench_serve/bench_runner.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <span>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/str_cat.h"

namespace duet::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr size_t kRawKept = 4096;  // bytes of a non-stream body kept for the error message

// A cap on requests in flight (none when `limit` is empty).
class Slots {
 public:
  explicit Slots(std::optional<int64_t> limit) : limit_(limit) {}
  void Acquire() {
    if (!limit_) return;
    std::unique_lock<std::mutex> lock(mutex_);
    freed_.wait(lock, [&] { return in_use_ < *limit_; });
    ++in_use_;
  }
  void Release() {
    if (!limit_) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --in_use_;
    }
    freed_.notify_one();
  }

 private:
  std::optional<int64_t> limit_;
  std::mutex mutex_;
  std::condition_variable freed_;
  int64_t in_use_ = 0;
};

// "[=====>    ] 37/100" on stderr, redrawn as requests finish.
class Progress {
 public:
  Progress(bool enabled, int64_t total) : enabled_(enabled), total_(total) {}
  void Done() {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    ++done_;
    const int width = 40;
    const int filled = static_cast<int>(width * done_ / std::max<int64_t>(1, total_));
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < width) bar += '>';
    bar.resize(width, ' ');
    std::fprintf(stderr, "\r[%s] %lld/%lld", bar.c_str(), static_cast<long long>(done_),
                 static_cast<long long>(total_));
    if (done_ == total_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  int64_t total_;
  std::mutex mutex_;
  int64_t done_ = 0;
};

// The server's error message out of an OpenAI error body, else the body.
std::string ErrorMessage(std::string_view body) {
  const Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object() && json.contains("error")) {
    const Json& error = json["error"];
    if (error.is_object() && error.contains("message") && error["message"].is_string()) {
      return error["message"].get<std::string>();
    }
    if (error.is_string()) return error.get<std::string>();
  }
  std::string text(body.substr(0, 200));
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

}  // namespace

std::string RequestBody(const BenchPrompt& prompt, const RunOptions& options) {
  Json body = {{"model", options.model},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"max_tokens", prompt.output_tokens},
               {"temperature", options.temperature}};
  if (options.chat) {
    body["messages"] = Json::array({{{"role", "user"}, {"content", prompt.text}}});
  } else {
    body["prompt"] = prompt.text;
  }
  // ignore_eos is vLLM's (and duet's) field, min_tokens the one llama.cpp's
  // servers read: with both, every server generates exactly max_tokens.
  if (options.ignore_eos) {
    body["ignore_eos"] = true;
    body["min_tokens"] = prompt.output_tokens;
  }
  if (options.extra_body.is_object()) {
    for (const auto& [key, value] : options.extra_body.items()) body[key] = value;
  }
  return body.dump();
}

void StreamTimer::Feed(std::string_view body, double now) {
  if (raw_.size() < kRawKept) raw_.append(body.substr(0, kRawKept - raw_.size()));
  for (char c : body) {
    if (c != '\r') buffer_.push_back(c);
  }
  for (size_t end; (end = buffer_.find("\n\n")) != std::string::npos;) {
    const std::string block = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    size_t at = 0;
    while (at <= block.size()) {
      const size_t line_end = std::min(block.find('\n', at), block.size());
      std::string_view line = std::string_view(block).substr(at, line_end - at);
      at = line_end + 1;
      if (!line.starts_with("data:")) continue;
      line.remove_prefix(5);
      if (line.starts_with(' ')) line.remove_prefix(1);
      Event(line, now);
    }
  }
}

void StreamTimer::Event(std::string_view data, double now) {
  if (data == "[DONE]") {
    saw_done_ = true;
    return;
  }
  const Json json = Json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    if (result_.error.empty()) result_.error = "a stream event that is not a JSON object";
    return;
  }
  if (json.contains("error")) {
    if (result_.error.empty()) result_.error = StrCat("the stream reported: ", ErrorMessage(data));
    return;
  }
  std::string text;
  if (const auto choices = json.find("choices"); choices != json.end() && choices->is_array() && !choices->empty()) {
    const Json& choice = (*choices)[0];
    const Json* source = &choice;
    if (chat_) source = choice.contains("delta") ? &choice["delta"] : nullptr;
    if (source != nullptr && source->is_object()) {
      static constexpr const char* kChatKeys[] = {"content", "reasoning_content"};
      static constexpr const char* kTextKeys[] = {"text"};
      const std::span<const char* const> keys = chat_ ? std::span<const char* const>(kChatKeys)
                                                      : std::span<const char* const>(kTextKeys);
      for (const char* key : keys) {
        if (const auto it = source->find(key); it != source->end() && it->is_string()) text += it->get<std::string>();
      }
    }
  }
  if (!text.empty()) {
    const double t = now - sent_at_;
    if (!first_chunk_seen_) {
      result_.ttft = t;
      first_chunk_seen_ = true;
    } else {
      result_.itl.push_back(t - last_chunk_);
    }
    last_chunk_ = t;
    result_.text += text;
  }
  if (const auto usage = json.find("usage"); usage != json.end() && usage->is_object()) {
    saw_usage_ = true;
    if (const auto it = usage->find("prompt_tokens"); it != usage->end() && it->is_number_integer()) {
      result_.prompt_tokens = it->get<int64_t>();
    }
    if (const auto it = usage->find("completion_tokens"); it != usage->end() && it->is_number_integer()) {
      result_.output_tokens = it->get<int64_t>();
    }
    if (const auto details = usage->find("prompt_tokens_details"); details != usage->end() && details->is_object()) {
      if (const auto it = details->find("cached_tokens"); it != details->end() && it->is_number_integer()) {
        result_.cached_tokens = it->get<int64_t>();
      }
    }
  }
}

RequestResult StreamTimer::Finish(int status, double now) {
  RequestResult result = std::move(result_);
  result.e2el = now - sent_at_;
  if (status != 200) {
    result.ok = false;
    result.error = StrCat("HTTP ", status, ": ", ErrorMessage(raw_));
    return result;
  }
  if (!result.error.empty()) return result;
  result.counted_by_tokenizer = !saw_usage_;
  if (!first_chunk_seen_) result.ttft = result.e2el;
  result.ok = true;
  return result;
}

absl::StatusOr<RunOutput> RunBenchmark(const std::vector<BenchPrompt>& prompts, const RunOptions& options) {
  if (prompts.empty()) return absl::InvalidArgumentError("no prompts to send");
  if (options.max_concurrency && *options.max_concurrency < 1) {
    return absl::InvalidArgumentError("--max-concurrency must be at least 1");
  }
  if (!(options.request_rate > 0)) return absl::InvalidArgumentError("--request-rate must be positive (or inf)");
  if (!(options.burstiness > 0)) return absl::InvalidArgumentError("--burstiness must be positive");
  const Clock::time_point epoch = Clock::now();
  const auto seconds = [epoch] { return std::chrono::duration<double>(Clock::now() - epoch).count(); };
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", "application/json"},
                                                              {"Accept", "text/event-stream"}};
  if (!options.api_key.empty()) headers.emplace_back("Authorization", StrCat("Bearer ", options.api_key));
  const auto send = [&](const BenchPrompt& prompt) {
    const HttpRequest request{.url = options.url, .body = RequestBody(prompt, options), .headers = headers};
    StreamTimer timer(options.chat, seconds());
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(options.request_timeout_s));
    absl::StatusOr<int> status =
        PostStreaming(request, deadline, [&](std::string_view body) { timer.Feed(body, seconds()); });
    if (!status.ok()) {
      RequestResult failed;
      failed.error = std::string(status.status().message());
      return failed;
    }
    RequestResult result = timer.Finish(*status, seconds());
    if (result.ok && result.counted_by_tokenizer) {
      if (options.tokenizer == nullptr) {
        result.ok = false;
        result.error = "the stream carried no usage (token counts)";
        return result;
      }
      const auto count = [&](const std::string& text) -> int64_t {
        absl::StatusOr<std::vector<int32_t>> ids = options.tokenizer->Encode(text, /*add_special_tokens=*/false);
        return ids.ok() ? static_cast<int64_t>(ids->size()) : 0;
      };
      result.prompt_tokens = count(prompt.text);
      result.output_tokens = count(result.text);
    }
    return result;
  };

  for (int64_t w = 0; w < options.num_warmups; ++w) {
    const RequestResult warmup = send(prompts[static_cast<size_t>(w) % prompts.size()]);
    if (!warmup.ok) return absl::FailedPreconditionError(StrCat("the warm-up request failed: ", warmup.error));
  }

  RunOutput output;
  output.results.resize(prompts.size());
  Slots slots(options.max_concurrency);
  Progress progress(options.progress, static_cast<int64_t>(prompts.size()));
  std::mt19937_64 rng(options.seed);
  const bool paced = options.request_rate != std::numeric_limits<double>::infinity();
  std::gamma_distribution<double> gap(options.burstiness, paced ? 1.0 / (options.request_rate * options.burstiness) : 1.0);
  std::vector<std::thread> threads;
  threads.reserve(prompts.size());
  const double start = seconds();
  std::mutex end_mutex;
  double end = start;
  Clock::time_point next_arrival = Clock::now();
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (paced && i > 0) {
      next_arrival += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
      std::this_thread::sleep_until(next_arrival);
    }
    slots.Acquire();
    threads.emplace_back([&, i] {
      output.results[i] = send(prompts[i]);
      const double finished = seconds();
      {
        std::lock_guard<std::mutex> lock(end_mutex);
        end = std::max(end, finished);
      }
      slots.Release();
      progress.Done();
    });
  }
  for (std::thread& thread : threads) thread.join();
  output.duration_s = end - start;
  return output;
}

}  // namespace duet::bench
