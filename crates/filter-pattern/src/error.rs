//! The error type every parser in this crate returns: what is wrong with a filter pattern and where.

use std::fmt;

/// Why a filter pattern was rejected.
///
/// `message` is a lowercase description without a trailing period; `position` is the
/// 1-based character (not byte) number in the pattern where the problem was found, when
/// it can be pinned down. A position one past the last character means "at the end".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub message: String,
    pub position: Option<usize>,
}

impl PatternError {
    /// An error at a 0-based character index of the pattern (stored 1-based).
    pub(crate) fn at(char_index: usize, message: impl Into<String>) -> Self {
        Self { message: message.into(), position: Some(char_index + 1) }
    }

    /// An error about the pattern as a whole.
    pub(crate) fn whole(message: impl Into<String>) -> Self {
        Self { message: message.into(), position: None }
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid filter pattern: {}", self.message)?;
        if let Some(position) = self.position {
            write!(f, " at character {position}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PatternError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let e = PatternError::at(11, "unterminated quoted phrase");
        assert_eq!(e.to_string(), "Invalid filter pattern: unterminated quoted phrase at character 12");
        let e = PatternError::whole("pattern is longer than 1024 characters");
        assert_eq!(e.to_string(), "Invalid filter pattern: pattern is longer than 1024 characters");
    }
}
