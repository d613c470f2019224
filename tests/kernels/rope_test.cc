// RopeInvFreq's properties that follow from the definitions alone; the exact
// values are checked against an independent numpy computation by
// rope_inv_freq_test.py.
#include "kernels/rope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

namespace duet::kernels {
namespace {

TEST(RopeInvFreqTest, DefaultIsThetaToTheMinusTwoIOverDim) {
  absl::StatusOr<std::vector<float>> inv_freq = RopeInvFreq({10000.0, 128, std::nullopt});
  ASSERT_TRUE(inv_freq.ok()) << inv_freq.status();
  ASSERT_EQ(inv_freq->size(), 64u);
  EXPECT_EQ((*inv_freq)[0], 1.0f);
  for (int i = 0; i < 64; ++i) {
    const double exact = std::pow(10000.0, -2.0 * i / 128);
    EXPECT_NEAR((*inv_freq)[i], exact, 4e-7 * exact) << i;
    if (i > 0) {
      EXPECT_LT((*inv_freq)[i], (*inv_freq)[i - 1]) << i;
    }
  }
}

TEST(RopeInvFreqTest, Llama3KeepsHighFrequenciesDividesLowOnesAndBlendsBetween) {
  const Llama3RopeScaling llama31{8.0, 1.0, 4.0, 8192};  // Llama 3.1/3.3's config.json
  absl::StatusOr<std::vector<float>> plain = RopeInvFreq({500000.0, 128, std::nullopt});
  absl::StatusOr<std::vector<float>> scaled = RopeInvFreq({500000.0, 128, llama31});
  ASSERT_TRUE(plain.ok() && scaled.ok());
  int num_high = 0, num_low = 0, num_medium = 0;
  for (int i = 0; i < 64; ++i) {
    const double wavelen = 2 * std::numbers::pi / (*plain)[i];
    if (wavelen < 8192.0 / 4) {  // shorter than the high-frequency wavelength
      EXPECT_EQ((*scaled)[i], (*plain)[i]) << i;
      ++num_high;
    } else if (wavelen > 8192.0 / 1) {  // longer than the low-frequency wavelength
      EXPECT_EQ((*scaled)[i], (*plain)[i] / 8.0f) << i;
      ++num_low;
    } else {
      // smooth = (8192 / wavelen - 1) / 3 in [0, 1] blends inv_freq/8 and
      // inv_freq.
      const double smooth = (8192 / wavelen - 1) / 3;
      const double blended = (1 - smooth) * (*plain)[i] / 8 + smooth * (*plain)[i];
      EXPECT_NEAR((*scaled)[i], blended, 1e-6 * blended) << i;
      EXPECT_GT((*scaled)[i], (*plain)[i] / 8.0f) << i;
      EXPECT_LT((*scaled)[i], (*plain)[i]) << i;
      ++num_medium;
    }
    if (i > 0) {
      EXPECT_LT((*scaled)[i], (*scaled)[i - 1]) << i;
    }
  }
  // With these factors all three bands are populated.
  EXPECT_GT(num_high, 0);
  EXPECT_GT(num_low, 0);
  EXPECT_GT(num_medium, 0);
}

TEST(RopeInvFreqTest, RejectsInvalidConfigsNamingTheField) {
  EXPECT_THAT(RopeInvFreq({0.0, 128, std::nullopt}).status().message(),
              ::testing::HasSubstr("rope_theta"));
  EXPECT_THAT(RopeInvFreq({10000.0, 7, std::nullopt}).status().message(),
              ::testing::HasSubstr("rotary dim"));
  EXPECT_THAT(RopeInvFreq({10000.0, 0, std::nullopt}).status().message(),
              ::testing::HasSubstr("rotary dim"));
  EXPECT_THAT(RopeInvFreq({10000.0, 64, Llama3RopeScaling{0.0, 1.0, 4.0, 8192}}).status().message(),
              ::testing::HasSubstr("rope_scaling.factor"));
  EXPECT_THAT(RopeInvFreq({10000.0, 64, Llama3RopeScaling{8.0, 4.0, 4.0, 8192}}).status().message(),
              ::testing::HasSubstr("low_freq_factor"));
  EXPECT_THAT(RopeInvFreq({10000.0, 64, Llama3RopeScaling{8.0, 1.0, 4.0, 0}}).status().message(),
              ::testing::HasSubstr("original_max_position_embeddings"));
}

}  // namespace
}  // namespace duet::kernels
