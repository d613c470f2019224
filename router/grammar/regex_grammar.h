// Regular expressions compiled into grammar rules (grammar.h).
//
// The pattern must match the whole output (as vLLM's guided_regex and JSON
// Schema's pattern are used by xgrammar): a leading ^ and a trailing $ are
// accepted and change nothing. Supported: literals and escapes (\n \t \r \f
// \v \0 \xHH \uHHHH and escaped punctuation), . (any character but \n),
// classes [...] with ranges and negation, \d \w \s and their negations
// (ASCII, as in ECMA-262), groups ( ), (?: ), (?P<name> ) and (?<name> ),
// alternation |, and the quantifiers * + ? {n} {n,} {n,m} (a lazy ? after
// them is accepted and ignored: every match is allowed either way).
// Backreferences, lookaround, word boundaries, inline flags and anchors
// elsewhere are InvalidArgument naming the construct.
#ifndef DUET_ROUTER_GRAMMAR_REGEX_GRAMMAR_H_
#define DUET_ROUTER_GRAMMAR_REGEX_GRAMMAR_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "router/grammar/grammar.h"

namespace duet::grammar {

// Adds the rules `pattern` needs to `grammar` and returns the elements that
// match it. With `json_string` the characters are matched as they are written
// inside a JSON string: " and \ escaped, control characters as \n, \t, \r,
// \b, \f or \u00XX.
absl::StatusOr<Sequence> CompileRegex(std::string_view pattern, bool json_string, Grammar* grammar);

// A grammar whose root matches exactly the strings `pattern` matches.
absl::StatusOr<Grammar> RegexGrammar(std::string_view pattern);

}  // namespace duet::grammar

#endif  // DUET_ROUTER_GRAMMAR_REGEX_GRAMMAR_H_
