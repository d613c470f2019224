// Unit tests of the chat template interpreter, one construct at a time.
// Expected outputs are what jinja2 (configured as transformers configures it)
// renders for the same template and context.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/chat_template/builtins.h"
#include "router/chat_template/chat_template.h"

namespace duet::chat_template {
namespace {

using ::testing::HasSubstr;

const nlohmann::ordered_json kContext = nlohmann::ordered_json::parse(R"json({"name": "duet", "n": 3, "f": 2.5, "xs": [3, 1, 2], "words": ["a", "b", "c"], "d": {"b": 2, "a": 1}, "msgs": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "nil": null, "yes": true, "text": "  Hello World \n"})json");

absl::StatusOr<std::string> Render(const std::string& source, const nlohmann::ordered_json& context = kContext,
                                   const RenderLimits& limits = {}) {
  absl::StatusOr<ChatTemplate> parsed = ChatTemplate::Parse(source, limits);
  if (!parsed.ok()) return parsed.status();
  return parsed->Render(context, limits, absl::FromUnixSeconds(1700000000));
}

struct RenderCase {
  const char* construct;
  const char* source;
  const char* expected;
};

class RenderTest : public ::testing::TestWithParam<RenderCase> {};

TEST_P(RenderTest, MatchesJinja2) {
  const RenderCase& c = GetParam();
  absl::StatusOr<std::string> output = Render(c.source);
  ASSERT_TRUE(output.ok()) << c.source << "\n" << output.status();
  EXPECT_EQ(*output, c.expected) << c.source;
}

const RenderCase kCases[] = {
    {"Expressions", "{{ 1 + 2 }}|{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}",
     "3|3.5|2.0|3|-4|2|1024|0.5"},
    {"Expressions", "{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e16 }}|{{ 1.5e-5 }}|{{ 1e100 }}|{{ -0.0 }}|{{ 3 * 1.0 }}|{{ 10 / 4 }}",
     "1.0|0.30000000000000004|1e+16|1.5e-05|1e+100|-0.0|3.0|2.5"},
    {"Expressions", "{{ 'a' ~ 1 ~ none ~ true ~ undefined_name }}|{{ 'a' + 'b' }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}",
     "a1NoneTrue|ab|ababab|[1, 2]"},
    {"Expressions", "{{ [1, 'a', none, true, 1.5, {'k': (1, 2)}] }}|{{ (1,) }}|{{ () }}|{{ {} }}|{{ ['it\\'s', \"q\\\"\"] }}",
     "[1, 'a', None, True, 1.5, {'k': (1, 2)}]|(1,)|()|{}|[\"it's\", 'q\"']"},
    {"Expressions", "{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 'a' in 'cat' }}|{{ 2 not in xs }}|{{ 'b' in d }}|{{ 1 == 1.0 }}|{{ none is none }}",
     "True|False|True|False|True|True|True"},
    {"Expressions", "{{ xs[0] }}|{{ xs[-1] }}|{{ xs[1:] }}|{{ xs[::-1] }}|{{ name[1:3] }}|{{ name[-2:] }}|{{ 'héllo'[1] }}|{{ xs[10] }}",
     "3|2|[1, 2]|[2, 1, 3]|ue|et|é|"},
    {"Expressions", "{{ d.a }}|{{ d['b'] }}|{{ d.missing }}|{{ msgs[1].role }}|{{ msgs[0]['content'] }}|{{ nil.anything }}",
     "1|2||user|sys|"},
    {"Expressions", "{{ 'yes' if yes else 'no' }}|{{ 'x' if nil }}|{{ nil or 'fallback' }}|{{ 0 and 1 }}|{{ not xs }}|{{ -n }}",
     "yes||fallback|0|False|-3"},
    {"Expressions", "{{ true }}|{{ True }}|{{ none }}|{{ nil }}|{{ undefined_name }}|{{ 'a' 'b' }}|{{ 1_000 }}",
     "True|True|None|None||ab|1000"},
    {"StringMethods", "{{ text.strip() }}|{{ text.lstrip() }}|{{ text.rstrip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nab\\n'.lstrip('\\n') }}",
     "Hello World|Hello World \n|  Hello World|a|ab\n"},
    {"StringMethods", "{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ 'x'.split('</think>')[-1] }}",
     "['a', 'b', '', 'c']|['a', 'b']|['a', 'b,c']|['a,b', 'c']|x"},
    {"StringMethods", "{{ name.startswith('du') }}|{{ name.endswith('et') }}|{{ name.startswith(('x', 'd')) }}|{{ name.upper() }}|{{ 'ÉCOLE'.lower() }}",
     "True|True|True|DUET|école"},
    {"StringMethods", "{{ 'a-b-a'.replace('a', 'x') }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'banana'.count('an') }}|{{ 'banana'.find('n') }}|{{ '-'.join(words) }}",
     "x-b-x|bba|Hello World|Hello|2|2|a-b-c"},
    {"DictAndListMethods", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 9) }}",
     "b=2;a=1;|['b', 'a']|[2, 1]|1|None|9"},
    {"DictAndListMethods", "{{ xs.index(1) }}|{{ xs.count(3) }}|{{ msgs|length }}",
     "1|1|3"},
    {"Filters", "{{ text|trim }}|{{ '..a..'|trim('.') }}|{{ xs|length }}|{{ name|length }}|{{ d|length }}|{{ words|join }}|{{ words|join(', ') }}|{{ msgs|join(',', attribute='role') }}",
     "Hello World|a|3|4|2|abc|a, b, c|system,user,assistant"},
    {"Filters", "{{ d|items|list }}|{{ name|upper }}|{{ 'ABC'|lower }}|{{ undefined_name|default('dflt') }}|{{ ''|default('e', true) }}|{{ nil|default('n') }}",
     "[('b', 2), ('a', 1)]|DUET|abc|dflt|e|None"},
    {"Filters", "{{ xs|first }}|{{ xs|last }}|{{ name|first }}|{{ words|reject('equalto', 'b')|list }}|{{ xs|select('odd')|list }}|{{ words|map('upper')|list }}",
     "3|2|d|['a', 'c']|[3, 1]|['A', 'B', 'C']"},
    {"Filters", "{{ msgs|selectattr('role', 'equalto', 'user')|list }}|{{ msgs|rejectattr('role', 'in', ['system'])|map(attribute='content')|join }}|{{ msgs|map(attribute='missing', default='-')|join }}",
     "[{'role': 'user', 'content': 'hi'}]|hiyo|---"},
    {"Filters", "{{ yes|string }}|{{ nil|string }}|{{ xs|string }}|{{ '42'|int + 1 }}|{{ '4.7'|int }}|{{ 'x'|int(7) }}|{{ 3.9|int }}|{{ '2.5'|float }}|{{ 'a<b'|safe }}|{{ -3|abs }}",
     "True|None|[3, 1, 2]|43|4|7|3|2.5|a<b|3"},
    {"Filters", "{{ xs|sort|list }}|{{ words|reverse|list }}|{{ [1, 1, 2]|unique|list }}|{{ xs|sum }}|{{ xs|min }}|{{ xs|max }}|{{ 'ab'|replace('a', 'c') }}|{{ 'hello world'|title }}|{{ 'a\\nb'|indent(2) }}",
     "[1, 2, 3]|['c', 'b', 'a']|[1, 2]|6|1|3|cb|Hello World|a\n  b"},
    {"Filters", "{{ d|tojson }}|{{ 'é\"\\n'|tojson }}|{{ [1, 2.0, none, true]|tojson }}|{{ d|tojson(indent=2) }}|{{ {'a': [], 'b': {}}|tojson(indent=4) }}|{{ d|tojson(separators=(',', ':')) }}|{{ d|tojson(sort_keys=true) }}",
     "{\"b\": 2, \"a\": 1}|\"é\\\"\\n\"|[1, 2.0, null, true]|{\n  \"b\": 2,\n  \"a\": 1\n}|{\n    \"a\": [],\n    \"b\": {}\n}|{\"b\":2,\"a\":1}|{\"a\": 1, \"b\": 2}"},
    {"Tests", "{{ nil is none }}|{{ undefined_name is defined }}|{{ name is defined }}|{{ undefined_name is undefined }}|{{ name is string }}|{{ d is mapping }}|{{ xs is iterable }}|{{ name is iterable }}",
     "True|False|True|True|True|True|True|True"},
    {"Tests", "{{ n is number }}|{{ f is number }}|{{ yes is number }}|{{ n is integer }}|{{ f is float }}|{{ yes is boolean }}|{{ n is odd }}|{{ xs is sequence }}",
     "True|True|True|True|True|True|True|True"},
    {"Tests", "{{ n is equalto 3 }}|{{ n is eq(3) }}|{{ name is not none }}|{{ 6 is divisibleby 3 }}|{{ 'b' is in words }}|{{ yes is true }}|{{ nil is false }}|{{ 'abc' is lower }}|{{ d.get is callable }}",
     "True|True|True|True|True|True|False|True|True"},
    {"Loops", "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }},{% endfor %}",
     "10TrueFalse332,21FalseFalse321,32FalseTrue310,"},
    {"Loops", "{% for x in xs %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }};{% endfor %}|{% for x in xs %}{{ loop.cycle('a', 'b') }}{% endfor %}",
     "<3>1;3<1>2;1<2>;|aba"},
    {"Loops", "{% for x in [] %}body{% else %}empty{% endfor %}|{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}|{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}",
     "empty|3222|b2a1"},
    {"Loops", "{% for x in xs %}{% if x == 1 %}{% continue %}{% endif %}{% if loop.index > 2 %}{% break %}{% endif %}{{ x }}{% endfor %}|{% for c in 'hé' %}[{{ c }}]{% endfor %}|{% for x in range(3) %}{{ x }}{% endfor %}{% for x in range(5, 0, -2) %}{{ x }}{% endfor %}",
     "3|[h][é]|012531"},
    {"Loops", "{% for x in xs %}{% for y in words %}{{ loop.index }}{% endfor %}{{ loop.index }} {% endfor %}|{% for m in msgs[::-1] %}{{ m.role[0] }}{% endfor %}",
     "1231 1232 1233 |aus"},
    {"Scoping", "{% set y = 1 %}{% for x in xs %}{% set y = x %}{{ y }}{% endfor %}|{{ y }}",
     "312|1"},
    {"Scoping", "{% for x in [1, 2] %}{% if loop.first %}{% set y = 5 %}{% endif %}{{ y }},{% endfor %}",
     "5,,"},
    {"Scoping", "{% if true %}{% set leaked = 'yes' %}{% endif %}{{ leaked }}|{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set s %}captured {{ n }}{% endset %}{{ s }}|{% set t | upper %}shout{% endset %}{{ t }}",
     "yes|12|captured 3|SHOUT"},
    {"Scoping", "{% set ns = namespace(count=0, found=false) %}{% for x in xs %}{% set ns.count = ns.count + x %}{% if x == 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }}{{ ns.found }}",
     "6True"},
    {"Scoping", "{% set messages = msgs[1:] %}{{ messages|length }}|{% set msgs = [] %}{{ msgs }}",
     "2|[]"},
    {"Macros", "{% macro greet(who, punct='!') %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet('a') }}|{{ greet('b', '?') }}|{{ greet(punct='.', who='c') }}|{{ greet() }}",
     "Hi a!|Hi b?|Hi c.|Hi !"},
    {"Macros", "{% macro render(m) %}{{ m.role }}:{{ m.content }}{% endmacro %}{% for m in msgs %}{{ render(m) }};{% endfor %}",
     "system:sys;user:hi;assistant:yo;"},
    {"Macros", "{% macro fact(k) %}{% if k <= 1 %}1{% else %}{{ k }}*{{ fact(k - 1) }}{% endif %}{% endmacro %}{{ fact(4) }}",
     "4*3*2*1"},
    {"Macros", "{% filter upper %}loud {{ name }}{% endfilter %}|{% raw %}{{ not rendered }}{% endraw %}",
     "LOUD DUET|{{ not rendered }}"},
    {"Whitespace", "a\n{% if true %}\nb\n{% endif %}\nc",
     "a\nb\nc"},
    {"Whitespace", "a\n    {% if true %}\n    b\n    {% endif %}\nc",
     "a\n    b\nc"},
    {"Whitespace", "a  {%- if true -%}  b  {%- endif -%}  c",
     "abc"},
    {"Whitespace", "  {{- name -}}  \n|  {{ name }}  \n|",
     "duet|  duet  \n|"},
    {"Whitespace", "x\n  {%+ if true %}y{% endif +%}\nz",
     "x\n  y\nz"},
    {"Whitespace", "{# comment #}\nA{#- c -#}  B\n  {# indented comment #}\nC",
     "AB\nC"},
    {"Whitespace", "{% for x in xs %}\n  {{ x }}\n{% endfor %}\nend\n",
     "  3\n  1\n  2\nend"},
    {"Whitespace", "line1\r\nline2\r{{ name }}\n\n",
     "line1\nline2\nduet\n"},
};

INSTANTIATE_TEST_SUITE_P(Constructs, RenderTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<RenderCase>& info) {
                           return std::string(info.param.construct) + "_" + std::to_string(info.index);
                         });

TEST(ChatTemplateTest, RaiseExceptionCarriesTheMessage) {
  absl::StatusOr<std::string> output = Render("a{{ raise_exception('Conversation roles must alternate!') }}b");
  ASSERT_FALSE(output.ok());
  EXPECT_EQ(output.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(output.status().message(), "Conversation roles must alternate!");
  EXPECT_TRUE(IsRaisedByTemplate(output.status()));
}

TEST(ChatTemplateTest, RenderErrorsNameTheLine) {
  absl::StatusOr<std::string> output = Render("line one\n{{ 'a' + 1 }}");
  ASSERT_FALSE(output.ok());
  EXPECT_EQ(output.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(output.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(output.status().message(), HasSubstr("can only concatenate str"));
  EXPECT_FALSE(IsRaisedByTemplate(output.status()));
}

TEST(ChatTemplateTest, UndefinedFailsWhereJinja2Fails) {
  EXPECT_EQ(Render("{{ missing }}").value(), "");
  EXPECT_EQ(Render("{{ missing|length }}").value(), "0");
  EXPECT_EQ(Render("{% for x in missing %}x{% endfor %}").value(), "");
  EXPECT_THAT(Render("{{ missing.attr }}").status().message(), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render("{{ missing + 1 }}").status().message(), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render("{{ missing() }}").status().message(), HasSubstr("'missing' is undefined"));
  EXPECT_THAT(Render("{{ missing|tojson }}").status().message(), HasSubstr("not JSON serializable"));
  EXPECT_THAT(Render("{{ (3 if false)|int }}").status().message(), HasSubstr("no else section"));
}

TEST(ChatTemplateTest, SyntaxErrorsAreStatuses) {
  for (const char* source : {"{{ 1 + }}", "{% if x %}", "{% for %}", "{{ 'unterminated }}", "{% endif %}",
                             "{% unknown %}", "{{ x | }}", "{% break %}", "{# open comment", "{{ (1 }}",
                             "{% macro m( %}{% endmacro %}", "{{ 99999999999999999999 }}"}) {
    absl::StatusOr<ChatTemplate> parsed = ChatTemplate::Parse(source);
    ASSERT_FALSE(parsed.ok()) << source;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << source;
    EXPECT_THAT(parsed.status().message(), HasSubstr("syntax error at line 1")) << source;
  }
}

TEST(ChatTemplateTest, SandboxRefusesMutationAndUnknownNames) {
  EXPECT_THAT(Render("{{ xs.append(4) }}").status().message(), HasSubstr("unsafe"));
  EXPECT_THAT(Render("{{ d.update({'a': 2}) }}").status().message(), HasSubstr("unsafe"));
  EXPECT_EQ(Render("{{ xs.__class__ }}{{ name.__len__ }}{{ d.__init__ }}").value(), "");
  EXPECT_THAT(Render("{{ name|nosuchfilter }}").status().message(), HasSubstr("no filter named 'nosuchfilter'"));
  EXPECT_THAT(Render("{{ name is nosuchtest }}").status().message(), HasSubstr("no test named 'nosuchtest'"));
  EXPECT_THAT(Render("{% set n.attr = 1 %}").status().message(), HasSubstr("non-namespace"));
}

TEST(ChatTemplateTest, StrftimeNowUsesTheGivenTime) {
  absl::StatusOr<ChatTemplate> parsed = ChatTemplate::Parse("{{ strftime_now('%Y') }}");
  ASSERT_TRUE(parsed.ok());
  absl::StatusOr<std::string> output =
      parsed->Render(nlohmann::ordered_json::object(), RenderLimits{}, absl::FromUnixSeconds(1700000000));
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ(*output, "2023");
}

TEST(ChatTemplateTest, GenerationTagRendersItsBody) {
  EXPECT_EQ(Render("a{% generation %}b{{ n }}{% endgeneration %}c").value(), "ab3c");
}

TEST(ChatTemplateLimitsTest, LoopIterations) {
  RenderLimits limits;
  limits.max_loop_iterations = 100;
  EXPECT_TRUE(Render("{% for x in range(50) %}{% endfor %}", kContext, limits).ok());
  absl::StatusOr<std::string> output =
      Render("{% for x in range(10) %}{% for y in range(20) %}{% endfor %}{% endfor %}", kContext, limits);
  EXPECT_EQ(output.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(output.status().message(), HasSubstr("loop iterations"));
  EXPECT_EQ(Render("{{ range(1000)|length }}", kContext, limits).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Render("{{ range(9223372036854775807)|length }}").status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ChatTemplateLimitsTest, OutputBytes) {
  RenderLimits limits;
  limits.max_output_bytes = 1000;
  EXPECT_TRUE(Render("{% for x in range(99) %}0123456789{% endfor %}", kContext, limits).ok());
  absl::StatusOr<std::string> output = Render("{% for x in range(101) %}0123456789{% endfor %}", kContext, limits);
  EXPECT_EQ(output.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(output.status().message(), HasSubstr("1000 bytes"));
  // Values built without printing are bounded too.
  EXPECT_EQ(Render("{% set s = 'x' * 5000 %}", kContext, limits).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Render("{% set s %}{% for x in range(200) %}0123456789{% endfor %}{% endset %}", kContext, limits)
                .status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Render("{{ 'ab' * 9223372036854775807 }}").status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ChatTemplateLimitsTest, RecursionDepth) {
  RenderLimits limits;
  limits.max_recursion_depth = 64;
  absl::StatusOr<std::string> output =
      Render("{% macro loop_forever(k) %}{{ loop_forever(k + 1) }}{% endmacro %}{{ loop_forever(0) }}", kContext,
             limits);
  EXPECT_EQ(output.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(output.status().message(), HasSubstr("recursion"));
  // The default limit stops unbounded recursion too, without exhausting the stack.
  EXPECT_EQ(Render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(ChatTemplateLimitsTest, ParseNesting) {
  RenderLimits limits;
  limits.max_parse_nesting = 20;
  std::string deep_parens = std::string(30, '(') + "1" + std::string(30, ')');
  EXPECT_EQ(ChatTemplate::Parse("{{ " + deep_parens + " }}", limits).status().code(),
            absl::StatusCode::kResourceExhausted);
  std::string long_chain = "{{ 1";
  for (int i = 0; i < 30; ++i) long_chain += " + 1";
  EXPECT_EQ(ChatTemplate::Parse(long_chain + " }}", limits).status().code(), absl::StatusCode::kResourceExhausted);
  std::string nested_ifs;
  for (int i = 0; i < 30; ++i) nested_ifs += "{% if true %}";
  for (int i = 0; i < 30; ++i) nested_ifs += "{% endif %}";
  EXPECT_EQ(ChatTemplate::Parse(nested_ifs, limits).status().code(), absl::StatusCode::kResourceExhausted);
  // Far deeper input than any default still fails cleanly.
  EXPECT_FALSE(ChatTemplate::Parse("{{ " + std::string(100000, '[') + " }}").ok());
  EXPECT_FALSE(ChatTemplate::Parse(std::string(50000, '{') + std::string(50000, '}')).ok());
}

TEST(ChatTemplateLimitsTest, DeepValuesAreRefused) {
  // Lists nested through a loop would otherwise grow without bound.
  absl::StatusOr<std::string> output = Render(
      "{% set ns = namespace(v=[]) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v|length }}");
  EXPECT_EQ(output.status().code(), absl::StatusCode::kResourceExhausted);
  nlohmann::ordered_json deep = nlohmann::ordered_json::array();
  for (int i = 0; i < 200; ++i) deep = nlohmann::ordered_json::array({deep});
  absl::StatusOr<ChatTemplate> parsed = ChatTemplate::Parse("{{ x }}");
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->Render(nlohmann::ordered_json{{"x", deep}}).ok());
}

TEST(ChatTemplateTest, ContextMustBeAnObject) {
  absl::StatusOr<ChatTemplate> parsed = ChatTemplate::Parse("x");
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->Render(nlohmann::ordered_json::array()).ok());
}

TEST(ChatTemplateTest, ParsedTemplateIsReusable) {
  absl::StatusOr<ChatTemplate> parsed = ChatTemplate::Parse("{{ messages|length }}:{{ messages[0].content }}");
  ASSERT_TRUE(parsed.ok());
  ChatTemplate copy = *parsed;
  for (int i = 1; i <= 3; ++i) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    for (int k = 0; k < i; ++k) messages.push_back({{"role", "user"}, {"content", std::to_string(k)}});
    EXPECT_EQ(copy.Render(nlohmann::ordered_json{{"messages", messages}}).value(), std::to_string(i) + ":0");
  }
}

}  // namespace
}  // namespace duet::chat_template
