// The generated router<->worker messages round-trip, and proto3 `optional`
// fields keep "absent" apart from zero, which the contract relies on.
#include "duet/worker/v1/worker.pb.h"

#include <gtest/gtest.h>

namespace duet {
namespace {

using worker::v1::SamplingParams;
using worker::v1::StepRequest;

TEST(WorkerProtoTest, StepRequestRoundTrips) {
  StepRequest request;
  request.set_step_id(7);
  auto* seq = request.add_new_sequences();
  seq->set_seq_id(42);
  seq->add_prompt_token_ids(128000);
  seq->add_prompt_token_ids(9906);
  seq->mutable_sampling()->set_temperature(0.7f);
  seq->mutable_sampling()->set_top_k(40);
  auto* scheduled = request.add_scheduled();
  scheduled->set_seq_id(42);
  scheduled->add_token_ids(128000);
  scheduled->add_token_ids(9906);
  scheduled->add_new_block_ids(3);
  scheduled->set_sample(true);

  std::string wire;
  ASSERT_TRUE(request.SerializeToString(&wire));
  StepRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.step_id(), 7u);
  ASSERT_EQ(parsed.new_sequences_size(), 1);
  EXPECT_EQ(parsed.new_sequences(0).prompt_token_ids_size(), 2);
  EXPECT_EQ(parsed.new_sequences(0).sampling().top_k(), 40);
  EXPECT_EQ(parsed.scheduled(0).new_block_ids(0), 3u);
  EXPECT_TRUE(parsed.scheduled(0).sample());
}

TEST(WorkerProtoTest, OptionalFieldsDistinguishAbsentFromZero) {
  SamplingParams params;
  EXPECT_FALSE(params.has_top_k());
  params.set_top_k(0);
  EXPECT_TRUE(params.has_top_k());

  std::string wire;
  ASSERT_TRUE(params.SerializeToString(&wire));
  SamplingParams parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_TRUE(parsed.has_top_k());
  EXPECT_EQ(parsed.top_k(), 0);
  EXPECT_FALSE(parsed.has_top_p());
}

}  // namespace
}  // namespace duet
