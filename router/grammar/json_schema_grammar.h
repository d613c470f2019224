// JSON Schema compiled into a grammar (grammar.h) whose strings are exactly
// the JSON texts valid against the schema, written in one layout: no
// whitespace but ", " between items and ": " after keys (Python's json.dumps
// layout, which xgrammar uses with any_whitespace off), object properties in
// the order the schema lists them.
//
// Supported keywords:
//   type (a name or a list), enum, const, anyOf, oneOf (as anyOf), allOf of
//   one schema, $ref to "#", "#/$defs/..." or "#/definitions/..." (recursion
//   allowed);
//   objects: properties, required, additionalProperties (false when absent,
//   as xgrammar's strict mode: only the listed properties);
//   arrays: items, minItems, maxItems;
//   strings: minLength, maxLength, pattern (a whole-string match, see
//   regex_grammar.h), format date, time, date-time, uuid, ipv4;
//   integers: minimum, maximum, exclusiveMinimum, exclusiveMaximum.
// Annotations (title, description, default, examples, $schema, $id,
// $comment, deprecated, readOnly, writeOnly) are ignored. Any other keyword,
// or bounds on type number, is InvalidArgument naming it: a constraint duet
// cannot enforce is refused, never silently dropped.
#ifndef DUET_ROUTER_GRAMMAR_JSON_SCHEMA_GRAMMAR_H_
#define DUET_ROUTER_GRAMMAR_JSON_SCHEMA_GRAMMAR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "router/grammar/grammar.h"

namespace duet::grammar {

absl::StatusOr<Grammar> JsonSchemaGrammar(const nlohmann::ordered_json& schema);

// Adds the rules of `schema` (the root its "$ref"s resolve against) to
// `grammar` and returns the elements that match its JSON texts, for
// grammars that embed JSON (tool calls).
absl::StatusOr<Sequence> CompileJsonSchema(const nlohmann::ordered_json& schema, Grammar* grammar);

// Any JSON object (response_format json_object).
Grammar JsonObjectGrammar();

// Exactly one of `choices` (guided_choice); InvalidArgument when empty.
absl::StatusOr<Grammar> ChoiceGrammar(const std::vector<std::string>& choices);

// A JSON value written in the grammar's layout (for enum and const).
std::string JsonLayout(const nlohmann::ordered_json& value);

}  // namespace duet::grammar

#endif  // DUET_ROUTER_GRAMMAR_JSON_SCHEMA_GRAMMAR_H_
