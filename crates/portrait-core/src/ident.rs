//! `UserID` / identifier validation.
//!
//! The vendor documents two rules (spec §3.4): the server SDK comments say letters, digits,
//! `_` and `-`; the client error 7003 says "non-empty printable ASCII 0x20–0x7e, at most 32 bytes".
//! Portrait takes the wider client rule so that every account the vendor accepts can move over.

use std::fmt;

/// Maximum length of a UserID, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 32;

/// A validated UserID. Construct only through [`Identifier::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Identifier(String);

/// Why a string is not a valid UserID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Empty string.
    #[error("UserID is empty")]
    Empty,
    /// Longer than [`MAX_IDENTIFIER_BYTES`].
    #[error("UserID {0:?} is longer than 32 bytes")]
    TooLong(String),
    /// Contains a byte outside printable ASCII.
    #[error("UserID {0:?} has a character outside printable ASCII")]
    BadChar(String),
}

impl Identifier {
    /// Parses a UserID.
    ///
    /// # Errors
    /// Empty, longer than 32 bytes, or not printable ASCII (0x20–0x7e).
    pub fn parse(s: &str) -> Result<Self, IdentifierError> {
        if s.is_empty() {
            return Err(IdentifierError::Empty);
        }
        if s.len() > MAX_IDENTIFIER_BYTES {
            return Err(IdentifierError::TooLong(s.to_owned()));
        }
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(IdentifierError::BadChar(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The UserID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the identifier.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Identifier {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_accepts_printable_ascii_up_to_32_bytes() {
        assert!(Identifier::parse("user_1-A").is_ok());
        assert!(Identifier::parse(&"a".repeat(32)).is_ok());
        assert!(Identifier::parse("with space").is_ok());
    }

    #[test]
    fn identifier_rejects_empty_long_and_non_ascii() {
        assert_eq!(Identifier::parse(""), Err(IdentifierError::Empty));
        assert!(matches!(
            Identifier::parse(&"a".repeat(33)),
            Err(IdentifierError::TooLong(_))
        ));
        assert!(matches!(
            Identifier::parse("名字"),
            Err(IdentifierError::BadChar(_))
        ));
        assert!(matches!(
            Identifier::parse("tab\t"),
            Err(IdentifierError::BadChar(_))
        ));
    }
}
