// `duet bench serve`'s parts: the HTTP response decoder, the stream timer's
// reading of completions and chat events, the metrics against hand-computed
// values with vLLM's definitions, and the datasets.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "router/tokenizer/tokenizer.h"
#include "tests/test_paths.h"
#include "tools/bench_serve/bench_dataset.h"
#include "tools/bench_serve/bench_metrics.h"
#include "tools/bench_serve/bench_runner.h"
#include "tools/bench_serve/http_stream.h"

namespace duet::bench {
namespace {

using ::testing::HasSubstr;

TEST(HttpUrlTest, ParsesHostPortAndPath) {
  absl::StatusOr<HttpUrl> url = ParseHttpUrl("http://127.0.0.1:8000/v1/completions");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, "8000");
  EXPECT_EQ(url->path, "/v1/completions");
  absl::StatusOr<HttpUrl> bare = ParseHttpUrl("http://localhost");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port, "80");
  EXPECT_EQ(bare->path, "/");
  EXPECT_FALSE(ParseHttpUrl("https://x").ok());
  EXPECT_FALSE(ParseHttpUrl("http://:80/").ok());
  EXPECT_FALSE(ParseHttpUrl("http://host:99999/").ok());
}

// Feeds `response` to a decoder `step` bytes at a time.
std::string Decode(const std::string& response, size_t step, ResponseDecoder* decoder) {
  std::string body;
  for (size_t at = 0; at < response.size(); at += step) {
    const absl::Status status = decoder->Feed(std::string_view(response).substr(at, step), &body);
    EXPECT_TRUE(status.ok()) << status;
  }
  return body;
}

TEST(ResponseDecoderTest, ChunkedBodySplitAnywhere) {
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\ndata: \r\n17;ext=1\r\n{\"a\":1}\n\ndata: [DONE]\n\n\r\n0\r\nTrailer: x\r\n\r\n";
  for (size_t step : {1, 2, 3, 7, 1000}) {
    ResponseDecoder decoder;
    EXPECT_EQ(Decode(response, step, &decoder), "data: {\"a\":1}\n\ndata: [DONE]\n\n") << step;
    EXPECT_TRUE(decoder.done()) << step;
    EXPECT_EQ(decoder.status_code(), 200);
    EXPECT_EQ(decoder.Header("content-type"), "text/event-stream");
  }
}

TEST(ResponseDecoderTest, ContentLengthAndUntilClose) {
  ResponseDecoder sized;
  EXPECT_EQ(Decode("HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nhello", 4, &sized), "hello");
  EXPECT_TRUE(sized.done());
  EXPECT_EQ(sized.status_code(), 400);

  ResponseDecoder open;
  EXPECT_EQ(Decode("HTTP/1.0 200 OK\r\n\r\nabc", 2, &open), "abc");
  EXPECT_FALSE(open.done());
  EXPECT_TRUE(open.Close().ok());

  ResponseDecoder cut;
  Decode("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100, &cut);
  EXPECT_EQ(cut.Close().code(), absl::StatusCode::kUnavailable);
}

TEST(ResponseDecoderTest, MalformedResponsesAreErrors) {
  for (const std::string response : {"SMTP 220 hi\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
    ResponseDecoder decoder;
    std::string body;
    EXPECT_FALSE(decoder.Feed(response, &body).ok()) << response;
  }
}

TEST(StreamTimerTest, CompletionsTimesEveryTextChunk) {
  StreamTimer timer(/*chat=*/false, /*sent_at=*/10.0);
  timer.Feed("data: {\"choices\":[{\"text\":\"He\"}]}\n\n", 10.5);
  timer.Feed("data: {\"choices\":[{\"text\":\"llo\"}]}\n\ndata: {\"choices\":[{\"te", 10.75);
  timer.Feed("xt\":\"!\"}]}\r\n\r\n", 11.0);
  timer.Feed("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,"
             "\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\ndata: [DONE]\n\n",
             11.25);
  const RequestResult r = timer.Finish(200, 11.5);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.text, "Hello!");
  EXPECT_DOUBLE_EQ(r.ttft, 0.5);
  ASSERT_EQ(r.itl.size(), 2u);
  EXPECT_DOUBLE_EQ(r.itl[0], 0.25);
  EXPECT_DOUBLE_EQ(r.itl[1], 0.25);
  EXPECT_DOUBLE_EQ(r.e2el, 1.5);
  EXPECT_EQ(r.prompt_tokens, 7);
  EXPECT_EQ(r.output_tokens, 3);
  EXPECT_EQ(r.cached_tokens, 4);
}

TEST(StreamTimerTest, ChatReadsDeltasAndSkipsRoleOnlyChunks) {
  StreamTimer timer(/*chat=*/true, 0.0);
  timer.Feed("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n", 0.1);
  timer.Feed("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n", 0.3);
  timer.Feed("data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n", 0.4);
  timer.Feed("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n", 0.5);
  const RequestResult r = timer.Finish(200, 0.5);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.text, "Hi there");
  EXPECT_DOUBLE_EQ(r.ttft, 0.3);
  ASSERT_EQ(r.itl.size(), 1u);
  EXPECT_NEAR(r.itl[0], 0.1, 1e-12);
}

TEST(StreamTimerTest, FailuresSayWhy) {
  StreamTimer http_error(false, 0.0);
  http_error.Feed("{\"error\":{\"message\":\"max_tokens is too large\",\"type\":\"invalid_request_error\"}}", 0.1);
  const RequestResult bad = http_error.Finish(400, 0.1);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error, "HTTP 400: max_tokens is too large");

  // No usage: the runner counts with the tokenizer (or fails without one).
  StreamTimer no_usage(false, 0.0);
  no_usage.Feed("data: {\"choices\":[{\"text\":\"x\"}]}\n\ndata: [DONE]\n\n", 0.1);
  const RequestResult uncounted = no_usage.Finish(200, 0.1);
  EXPECT_TRUE(uncounted.ok);
  EXPECT_TRUE(uncounted.counted_by_tokenizer);
  EXPECT_EQ(uncounted.output_tokens, 0);

  StreamTimer mid_stream(false, 0.0);
  mid_stream.Feed("data: {\"choices\":[{\"text\":\"x\"}]}\n\ndata: {\"error\":{\"message\":\"worker lost\"}}\n\n", 0.1);
  const RequestResult aborted = mid_stream.Finish(200, 0.2);
  EXPECT_FALSE(aborted.ok);
  EXPECT_THAT(aborted.error, HasSubstr("worker lost"));
}

TEST(RequestBodyTest, AsksForUsageAndTheOutputLength) {
  RunOptions options;
  options.model = "m";
  options.ignore_eos = true;
  const BenchPrompt prompt{.text = "hi", .prompt_tokens = 1, .output_tokens = 9};
  const nlohmann::json completion = nlohmann::json::parse(RequestBody(prompt, options));
  EXPECT_EQ(completion["prompt"], "hi");
  EXPECT_EQ(completion["max_tokens"], 9);
  EXPECT_EQ(completion["stream"], true);
  EXPECT_EQ(completion["stream_options"]["include_usage"], true);
  EXPECT_EQ(completion["ignore_eos"], true);
  EXPECT_EQ(completion["min_tokens"], 9);
  options.chat = true;
  options.ignore_eos = false;
  const nlohmann::json chat = nlohmann::json::parse(RequestBody(prompt, options));
  EXPECT_EQ(chat["messages"][0]["content"], "hi");
  EXPECT_FALSE(chat.contains("prompt"));
  EXPECT_FALSE(chat.contains("ignore_eos"));
  EXPECT_FALSE(chat.contains("min_tokens"));
  options.extra_body = {{"response_format", {{"type", "json_object"}}}, {"max_tokens", 3}};
  const nlohmann::json extra = nlohmann::json::parse(RequestBody(prompt, options));
  EXPECT_EQ(extra["response_format"]["type"], "json_object");
  EXPECT_EQ(extra["max_tokens"], 3);  // the extra body wins
}

TEST(MetricsTest, PercentilesInterpolateAsNumpy) {
  // numpy.percentile([1, 2, 3, 4], [50, 90, 99]) = [2.5, 3.7, 3.97].
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_NEAR(Percentile({4, 1, 3, 2}, 90), 3.7, 1e-12);
  EXPECT_NEAR(Percentile({4, 1, 3, 2}, 99), 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(Percentile({5}, 99), 5);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0);
}

TEST(MetricsTest, SummaryFollowsVllmDefinitions) {
  std::vector<RequestResult> results(3);
  // 5 output tokens over 1.0 s with the first at 0.2 s: TPOT 0.2 s.
  results[0].ok = true;
  results[0].prompt_tokens = 10;
  results[0].output_tokens = 5;
  results[0].ttft = 0.2;
  results[0].e2el = 1.0;
  results[0].itl = {0.2, 0.2, 0.2, 0.2};
  // One output token: no TPOT.
  results[1].ok = true;
  results[1].prompt_tokens = 20;
  results[1].output_tokens = 1;
  results[1].ttft = 0.4;
  results[1].e2el = 0.4;
  results[2].error = "HTTP 429: too many requests";
  SloTargets slos;
  slos.ttft_ms = 300.0;
  const BenchReport report = Summarize(results, /*duration_s=*/2.0, {90, 99}, slos);
  EXPECT_EQ(report.completed, 2);
  EXPECT_EQ(report.failed, 1);
  EXPECT_EQ(report.errors.at("HTTP 429: too many requests"), 1);
  EXPECT_EQ(report.total_input_tokens, 30);
  EXPECT_EQ(report.total_output_tokens, 6);
  EXPECT_DOUBLE_EQ(report.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(report.output_throughput, 3.0);
  EXPECT_DOUBLE_EQ(report.total_token_throughput, 18.0);
  ASSERT_TRUE(report.goodput.has_value());
  EXPECT_DOUBLE_EQ(*report.goodput, 0.5);  // only the first meets TTFT ≤ 300 ms
  EXPECT_NEAR(report.ttft.mean, 300.0, 1e-9);
  EXPECT_NEAR(report.ttft.median, 300.0, 1e-9);
  EXPECT_NEAR(report.tpot.mean, 200.0, 1e-9);
  EXPECT_NEAR(report.itl.median, 200.0, 1e-9);
  EXPECT_NEAR(report.e2el.percentiles[0].second, 400 + 0.9 * 600, 1e-9);
  const nlohmann::json json = ReportJson(report);
  EXPECT_EQ(json["failed"], 1);
  EXPECT_NEAR(json["e2el"]["p90_ms"].get<double>(), 940.0, 1e-9);
  EXPECT_THAT(ReportTable(report, {}), HasSubstr("1 x HTTP 429: too many requests"));
}

TEST(MetricsTest, GoodputSpecIsChecked) {
  absl::StatusOr<SloTargets> slos = ParseGoodput("ttft:500 tpot:50,e2el:2000");
  ASSERT_TRUE(slos.ok()) << slos.status();
  EXPECT_EQ(*slos->ttft_ms, 500);
  EXPECT_EQ(*slos->tpot_ms, 50);
  EXPECT_EQ(*slos->e2el_ms, 2000);
  EXPECT_FALSE(ParseGoodput("").value().any());
  EXPECT_THAT(std::string(ParseGoodput("ttfb:5").status().message()), HasSubstr("ttfb"));
  EXPECT_FALSE(ParseGoodput("ttft:-1").ok());
  EXPECT_FALSE(ParseGoodput("ttft").ok());
}

std::unique_ptr<tokenizer::Tokenizer> TinyTokenizer() {
  const std::string path = duet::testing::BuildDir() + "/models/duet-tiny-qwen3/tokenizer.json";
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer = tokenizer::Tokenizer::FromFile(path);
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

TEST(DatasetTest, RandomPromptsHaveTheirLengthsAndSharedPrefix) {
  std::unique_ptr<tokenizer::Tokenizer> tokenizer = TinyTokenizer();
  if (tokenizer == nullptr) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  const RandomDatasetOptions options{.num_prompts = 20, .input_len = 40, .output_len = 10, .range_ratio = 0.5,
                                     .prefix_len = 16, .seed = 3};
  absl::StatusOr<std::vector<BenchPrompt>> prompts = RandomDataset(*tokenizer, options);
  ASSERT_TRUE(prompts.ok()) << prompts.status();
  ASSERT_EQ(prompts->size(), 20u);
  std::set<int64_t> output_lengths;
  for (const BenchPrompt& p : *prompts) {
    EXPECT_GE(p.output_tokens, 5);
    EXPECT_LE(p.output_tokens, 15);
    output_lengths.insert(p.output_tokens);
    EXPECT_GT(p.prompt_tokens, 0);
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer->Encode(p.text, false);
    ASSERT_TRUE(ids.ok());
    for (int32_t id : *ids) EXPECT_FALSE(tokenizer->IsSpecialToken(id)) << p.text;
  }
  EXPECT_GT(output_lengths.size(), 1u) << "lengths vary within the range";
  // The shared prefix: every prompt starts with the same text.
  const std::string& first = (*prompts)[0].text;
  size_t common = first.size();
  for (const BenchPrompt& p : *prompts) {
    size_t n = 0;
    while (n < common && n < p.text.size() && p.text[n] == first[n]) ++n;
    common = n;
  }
  EXPECT_GE(common, 16u) << "16 shared tokens are at least 16 bytes of shared text";
  // Same seed, same prompts; another seed, others.
  absl::StatusOr<std::vector<BenchPrompt>> again = RandomDataset(*tokenizer, options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[7].text, (*prompts)[7].text);
  RandomDatasetOptions other = options;
  other.seed = 4;
  EXPECT_NE(RandomDataset(*tokenizer, other).value()[7].text, (*prompts)[7].text);
  other.range_ratio = 1.5;
  EXPECT_FALSE(RandomDataset(*tokenizer, other).ok());
}

TEST(DatasetTest, ShareGptTakesFirstTurnsAndFilters) {
  std::unique_ptr<tokenizer::Tokenizer> tokenizer = TinyTokenizer();
  if (tokenizer == nullptr) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  const std::filesystem::path path = std::filesystem::path(::testing::TempDir()) / "sharegpt.json";
  std::ofstream(path) << R"([
    {"id": "a", "conversations": [{"from": "human", "value": "What is the capital of France, and why?"},
                                  {"from": "gpt", "value": "Paris is the capital of France since long ago."}]},
    {"id": "b", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello there, friend!"}]},
    {"id": "c", "conversations": [{"from": "human", "value": "only one turn here, nothing else"}]},
    {"id": "d"}
  ])";
  absl::StatusOr<std::vector<BenchPrompt>> prompts = ShareGptDataset(*tokenizer, path.string(), 10, std::nullopt, 0);
  ASSERT_TRUE(prompts.ok()) << prompts.status();
  ASSERT_EQ(prompts->size(), 1u) << "b's prompt is under 4 tokens, c has no answer, d no conversation";
  EXPECT_EQ((*prompts)[0].text, "What is the capital of France, and why?");
  EXPECT_EQ((*prompts)[0].output_tokens,
            static_cast<int64_t>(tokenizer->Encode("Paris is the capital of France since long ago.", false)->size()));
  absl::StatusOr<std::vector<BenchPrompt>> fixed = ShareGptDataset(*tokenizer, path.string(), 10, 32, 0);
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ((*fixed)[0].output_tokens, 32);
  EXPECT_EQ(ShareGptDataset(*tokenizer, "/no/such/file.json", 10, std::nullopt, 0).status().code(),
            absl::StatusCode::kNotFound);
  std::ofstream(path) << "{not json";
  EXPECT_FALSE(ShareGptDataset(*tokenizer, path.string(), 10, std::nullopt, 0).ok());
}

// Answers every connection with `response` (after reading the request's
// head and body), on a loopback port, until destroyed.
class CannedServer {
 public:
  explicit CannedServer(std::string response) : response_(std::move(response)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] {
      for (;;) {
        const int client = accept(fd_, nullptr, nullptr);
        if (client < 0 || stopping_) {
          if (client >= 0) close(client);
          return;
        }
        std::string request;
        char buffer[4096];
        size_t body_start = std::string::npos, length = 0;
        while (body_start == std::string::npos || request.size() < body_start + length) {
          const ssize_t n = recv(client, buffer, sizeof(buffer), 0);
          if (n <= 0) break;
          request.append(buffer, static_cast<size_t>(n));
          if (body_start == std::string::npos && (body_start = request.find("\r\n\r\n")) != std::string::npos) {
            body_start += 4;
            const size_t at = request.find("Content-Length: ");
            length = at == std::string::npos ? 0 : std::stoul(request.substr(at + 16));
          }
        }
        ++requests_;
        send(client, response_.data(), response_.size(), MSG_NOSIGNAL);
        close(client);
      }
    });
  }
  ~CannedServer() {
    stopping_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/completions"; }
  int requests() const { return requests_; }

 private:
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string ChunkedSse(const std::vector<std::string>& events) {
  std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const std::string& e : events) {
    const std::string data = "data: " + e + "\n\n";
    char size[16];
    std::snprintf(size, sizeof(size), "%zx", data.size());
    out += std::string(size) + "\r\n" + data + "\r\n";
  }
  return out + "0\r\n\r\n";
}

TEST(RunnerTest, EveryPromptIsSentAndCountedFromUsage) {
  CannedServer server(ChunkedSse({R"({"choices":[{"text":"a"}]})", R"({"choices":[{"text":"b"}]})",
                                  R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}})",
                                  "[DONE]"}));
  RunOptions options;
  options.url = ParseHttpUrl(server.url()).value();
  options.max_concurrency = 2;
  options.num_warmups = 1;
  const std::vector<BenchPrompt> prompts(5, BenchPrompt{.text = "x", .prompt_tokens = 1, .output_tokens = 2});
  absl::StatusOr<RunOutput> output = RunBenchmark(prompts, options);
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ(server.requests(), 6) << "five prompts and one warm-up";
  ASSERT_EQ(output->results.size(), 5u);
  for (const RequestResult& r : output->results) {
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.text, "ab");
    EXPECT_EQ(r.prompt_tokens, 5);
    EXPECT_EQ(r.output_tokens, 2);
    EXPECT_FALSE(r.counted_by_tokenizer);
    EXPECT_LE(r.ttft, r.e2el);
  }
  EXPECT_GT(output->duration_s, 0);
}

TEST(RunnerTest, StreamsWithoutUsageAreCountedByTheTokenizer) {
  std::unique_ptr<tokenizer::Tokenizer> tokenizer = TinyTokenizer();
  if (tokenizer == nullptr) GTEST_SKIP() << "duet-tiny-qwen3 is not built";
  CannedServer server(ChunkedSse({R"({"choices":[{"text":"Hello"}]})", R"({"choices":[{"text":" world"}]})",
                                  "[DONE]"}));
  RunOptions options;
  options.url = ParseHttpUrl(server.url()).value();
  options.num_warmups = 0;
  const std::vector<BenchPrompt> prompts(2, BenchPrompt{.text = "one two three", .prompt_tokens = 3,
                                                        .output_tokens = 2});
  absl::StatusOr<RunOutput> without = RunBenchmark(prompts, options);
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->results[0].ok) << "no tokenizer: the counts are unknown";
  EXPECT_THAT(without->results[0].error, HasSubstr("no usage"));

  options.tokenizer = tokenizer.get();
  absl::StatusOr<RunOutput> counted = RunBenchmark(prompts, options);
  ASSERT_TRUE(counted.ok());
  const RequestResult& r = counted->results[1];
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.counted_by_tokenizer);
  EXPECT_EQ(r.output_tokens, static_cast<int64_t>(tokenizer->Encode("Hello world", false)->size()));
  EXPECT_EQ(r.prompt_tokens, static_cast<int64_t>(tokenizer->Encode("one two three", false)->size()));
  EXPECT_EQ(Summarize(counted->results, 1.0, {99}, {}).counted_by_tokenizer, 2);
}

TEST(RunnerTest, AnUnreachableServerFailsTheWarmUp) {
  RunOptions options;
  options.url = ParseHttpUrl("http://127.0.0.1:1/v1/completions").value();
  const std::vector<BenchPrompt> prompts(1, BenchPrompt{.text = "x", .prompt_tokens = 1, .output_tokens = 1});
  absl::StatusOr<RunOutput> output = RunBenchmark(prompts, options);
  EXPECT_EQ(output.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(output.status().message()), HasSubstr("cannot connect"));
}

}  // namespace
}  // namespace duet::bench
