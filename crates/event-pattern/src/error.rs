//! The error type for invalid event patterns: where the problem is and what it is.

use std::fmt;

/// An event pattern that EventBridge (and event-ruler) would reject.
///
/// [`location`](PatternError::location) is the dotted path of the offending field as written
/// in the pattern (`detail.containers.exitCode`), with `$or[i]` steps for `$or` branches
/// (`detail.$or[1].state`); it is empty when the problem is the pattern as a whole.
/// [`message`](PatternError::message) says what is wrong in plain words. `Display` combines
/// both: `invalid event pattern at detail.state: empty arrays are not allowed ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    location: String,
    message: String,
}

impl PatternError {
    pub(crate) fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        PatternError { location: location.into(), message: message.into() }
    }

    /// Where the problem is: a dotted path into the pattern, or empty for the whole pattern.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// What is wrong, in plain words.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "invalid event pattern: {}", self.message)
        } else {
            write!(f, "invalid event pattern at {}: {}", self.location, self.message)
        }
    }
}

impl std::error::Error for PatternError {}
