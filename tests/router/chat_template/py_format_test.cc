// Python's str()/repr()/json.dumps() forms of values.
#include "router/chat_template/py_format.h"

#include <cmath>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace duet::chat_template {
namespace {

Value FromJson(const char* text) {
  return Value::FromJson(nlohmann::ordered_json::parse(text), "test").value();
}

TEST(PyFormatTest, FloatRepr) {
  EXPECT_EQ(FormatPyFloat(1.0), "1.0");
  EXPECT_EQ(FormatPyFloat(0.1), "0.1");
  EXPECT_EQ(FormatPyFloat(-2.5), "-2.5");
  EXPECT_EQ(FormatPyFloat(1e16), "1e+16");
  EXPECT_EQ(FormatPyFloat(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(FormatPyFloat(1.5e-5), "1.5e-05");
  EXPECT_EQ(FormatPyFloat(0.0001), "0.0001");
  EXPECT_EQ(FormatPyFloat(1e300), "1e+300");
  EXPECT_EQ(FormatPyFloat(0.30000000000000004), "0.30000000000000004");
  EXPECT_EQ(FormatPyFloat(-0.0), "-0.0");
  EXPECT_EQ(FormatPyFloat(INFINITY), "inf");
  EXPECT_EQ(FormatPyFloat(NAN), "nan");
}

TEST(PyFormatTest, StrAndRepr) {
  EXPECT_EQ(ToPyStr(Value()), "");
  EXPECT_EQ(ToPyStr(Value::None()), "None");
  EXPECT_EQ(ToPyStr(Value::Bool(true)), "True");
  EXPECT_EQ(ToPyStr(Value::String("it's")), "it's");
  EXPECT_EQ(ToPyRepr(Value::String("it's")), "\"it's\"");
  EXPECT_EQ(ToPyRepr(Value::String("both ' and \"")), "'both \\' and \"'");
  EXPECT_EQ(ToPyRepr(Value::String("tab\tnl\n\x01\xc2\xa0\xc3\xa9")), "'tab\\tnl\\n\\x01\\xa0\xc3\xa9'");
  EXPECT_EQ(ToPyStr(FromJson(R"([1, "a", null, true, 2.0, {"k": []}])")), "[1, 'a', None, True, 2.0, {'k': []}]");
  EXPECT_EQ(ToPyStr(Value::MakeList({Value::Int(1)}, /*is_tuple=*/true).value()), "(1,)");
}

TEST(PyFormatTest, JsonDumpsDefaults) {
  Value value = FromJson(R"({"b": [1, 2.0, "é\n\u0001\"\\"], "a": null, "c": true, "d": {}})");
  EXPECT_EQ(ToJson(value, {}).value(), "{\"b\": [1, 2.0, \"é\\n\\u0001\\\"\\\\\"], \"a\": null, \"c\": true, \"d\": {}}");
}

TEST(PyFormatTest, JsonDumpsOptions) {
  Value value = FromJson(R"({"b": [1, []], "a": "é"})");
  JsonDumpOptions indent;
  indent.indent = "  ";
  EXPECT_EQ(ToJson(value, indent).value(), "{\n  \"b\": [\n    1,\n    []\n  ],\n  \"a\": \"é\"\n}");
  JsonDumpOptions compact;
  compact.item_separator = ",";
  compact.key_separator = ":";
  compact.sort_keys = true;
  compact.ensure_ascii = true;
  EXPECT_EQ(ToJson(value, compact).value(), "{\"a\":\"\\u00e9\",\"b\":[1,[]]}");
  EXPECT_EQ(ToJson(Value::String("\xF0\x9F\x8C\x8D"), compact).value(), "\"\\ud83c\\udf0d\"");
  EXPECT_FALSE(ToJson(Value(), {}).ok());
  EXPECT_FALSE(ToJson(Value::MakeObject("Namespace", true), {}).ok());
}

}  // namespace
}  // namespace duet::chat_template
