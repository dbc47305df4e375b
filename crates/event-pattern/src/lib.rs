//! The Amazon EventBridge event-pattern language, with the semantics of AWS's open-source
//! matcher [event-ruler](https://github.com/aws/event-ruler).
//!
//! * [`EventPattern::parse`] validates a pattern like EventBridge does and reports
//!   [`PatternError`]s that say where (a dotted path) and what is wrong.
//! * [`EventPattern::matches`] tests one event; [`EventPattern::explain`] says why it does
//!   or does not match, condition by condition ([`Explanation`]).
//! * [`RuleSet`] compiles many patterns into one state machine and finds all matching rules
//!   in one pass over the event, giving exactly the answers of `EventPattern::matches` — on
//!   a `serde_json::Value`, on the event's JSON text ([`RuleSet::matching_rules_json`],
//!   which never builds a `Value`), or on an [`Envelope`] and the JSON text of the detail
//!   ([`RuleSet::matching_rules_event`]).
//!
//! # The language
//!
//! A pattern is a JSON object mirroring the event's nesting. Each leaf is an array of
//! alternatives (OR); the fields of a pattern must all match (AND); fields the pattern does
//! not name are ignored. Alternatives are plain values (`"x"`, `5`, `true`, `null`) or
//! objects with one operator:
//!
//! | operator | operand |
//! |---|---|
//! | `prefix`, `suffix` | a string, or `{"equals-ignore-case": string}` |
//! | `equals-ignore-case` | a string |
//! | `wildcard` | a string; `*` any run, `\*` and `\\` literals, `**` rejected |
//! | `anything-but` | a string, a number, a list of strings or of numbers, or `{prefix\|suffix\|equals-ignore-case\|wildcard: string or list}` |
//! | `numeric` | `["=", x]`, `[">", x]`, `[">=", x]`, `["<", x]`, `["<=", x]`, or `[">"\|">=", x, "<"\|"<=", y]` with x < y, numbers within ±5e9 with ≤ 6 decimals |
//! | `cidr` | an IPv4 or IPv6 block, `"10.0.0.0/24"` |
//! | `exists` | `true` or `false` |
//!
//! `$or` takes an array of at least two objects (alternatives), may nest, and may expand into
//! at most [`MAX_COMBINATIONS`] combinations.
//!
//! # Matching
//!
//! The event is flattened into (dotted path, leaf value) pairs; arrays add no path step and
//! any element can match ("the intersection is non-empty"), but all values used in one
//! match must come from the **same element** of any array of objects they share
//! (event-ruler's `rulesForJSONEvent`). See `condition` for which value types each operator
//! accepts, `number` for numeric comparison, `ip` for addresses, `pattern` for
//! `exists: false`, and `flatten` for the event model. Notable points:
//!
//! * strings never equal numbers; `[1]` matches `1.0`; `[""]` is not `[null]`;
//! * `exists: false` matches a field that is absent, or present only as an object or an
//!   empty array (leaves only: `{"a": {}}` and `{"a": []}` have no `a` value);
//!   `exists: true` matches any leaf value, `null` included, but not `{}` or `[]`;
//! * `anything-but` needs a value: a missing field never matches it; it lets through values
//!   of other types (a string passes `{"anything-but": [1, 2]}`);
//! * a key given twice in one object of an event counts once, with its last value (as in
//!   serde_json's `Map` and event-ruler's Jackson tree).

mod compile;
mod condition;
mod error;
mod explain;
mod flatten;
mod ip;
mod number;
mod pattern;
mod raw;
mod ruleset;
mod scan;
mod wildcard;

pub use compile::MAX_COMBINATIONS;
pub use error::PatternError;
pub use explain::{ConditionReport, Explanation, GroupReport, OrReport};
pub use pattern::EventPattern;
pub use ruleset::{Envelope, RuleSet};
