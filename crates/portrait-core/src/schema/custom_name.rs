//! The naming rule of custom profile fields, in one function ([`check_custom_name`]) that every
//! place declaring or parsing a custom tag goes through (config load via
//! [`super::CustomField::new`]; requests only ever resolve names an app declared).
//!
//! The vendor's rule has two layers (spec §1.3):
//! * every profile key is made only of ASCII letters, digits and `_` (TC-33520);
//! * the console's rule for *new* fields is `Tag_Profile_Custom_` + a keyword of at most 8 bytes,
//!   letters only (TC-33520, TC-34419).
//!
//! The vendor's own documents (the seeds) go beyond the console rule: `Tag_Profile_Custom_Test1`
//! (a digit) and the legacy numbered form `Tag_Profile_Custom_888888_Test`. Where the documents
//! and the console disagree the documents win, so Portrait accepts:
//!
//! ```text
//! name    := "Tag_Profile_Custom_" key
//!          | "Tag_Profile_Custom_" number "_" key      (legacy numbered form)
//! key     := 1 to 8 ASCII letters or digits, the first a letter
//! number  := 1 to 10 ASCII digits
//! ```
//!
//! Nothing else: no other `_`, no non-ASCII, and the prefix is case-sensitive. This module must
//! not know which fields an app declared; that is [`super::Schema`]'s job.

use super::CUSTOM_PREFIX;

/// Longest key of a custom field name, in bytes (the vendor's "at most 8 bytes").
pub const MAX_CUSTOM_KEY: usize = 8;
/// Longest number of the legacy numbered form `Tag_Profile_Custom_<number>_<key>` (an SDKAppID
/// is a 32-bit number: at most 10 digits).
pub const MAX_LEGACY_NUMBER: usize = 10;

/// The rule in one sentence, for error messages and docs.
pub const CUSTOM_NAME_RULE: &str = "Tag_Profile_Custom_ followed by a key of 1 to 8 ASCII letters \
     or digits starting with a letter (e.g. Tag_Profile_Custom_Test1), or by the legacy \
     <1 to 10 digits>_<key> (e.g. Tag_Profile_Custom_888888_Test)";

/// Why a name is not a valid custom field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomNameError {
    /// The name does not start with the case-sensitive `Tag_Profile_Custom_`.
    #[error("must start with Tag_Profile_Custom_")]
    Prefix,
    /// The key (after the prefix, or after the legacy number) is empty or over 8 bytes.
    #[error("the key after the prefix must be 1 to 8 ASCII letters or digits, found {0} bytes")]
    KeyLength(usize),
    /// The key has a character other than an ASCII letter or digit, or starts with a digit.
    #[error("the key must be ASCII letters or digits and start with a letter")]
    KeyCharacters,
    /// The legacy number is over 10 digits.
    #[error("the number of the legacy form Tag_Profile_Custom_<number>_<key> must be 1 to 10 digits, found {0}")]
    NumberLength(usize),
}

/// The parts of a valid custom field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomName<'a> {
    /// The legacy number, if the name has the numbered form.
    pub number: Option<&'a str>,
    /// The key.
    pub key: &'a str,
}

/// Checks `name` against the custom field naming rule (module docs) and splits it.
///
/// # Errors
/// A [`CustomNameError`] saying which part is wrong.
pub fn check_custom_name(name: &str) -> Result<CustomName<'_>, CustomNameError> {
    let rest = name
        .strip_prefix(CUSTOM_PREFIX)
        .ok_or(CustomNameError::Prefix)?;
    let (number, key) = match rest.split_once('_') {
        Some((number, key)) if number.bytes().all(|b| b.is_ascii_digit()) && !number.is_empty() => {
            if number.len() > MAX_LEGACY_NUMBER {
                return Err(CustomNameError::NumberLength(number.len()));
            }
            (Some(number), key)
        }
        _ => (None, rest),
    };
    if key.is_empty() || key.len() > MAX_CUSTOM_KEY {
        return Err(CustomNameError::KeyLength(key.len()));
    }
    let bytes = key.as_bytes();
    if !bytes[0].is_ascii_alphabetic() || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(CustomNameError::KeyCharacters);
    }
    Ok(CustomName { number, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_the_vendor_documents_use_are_accepted() {
        for (name, number, key) in [
            ("Tag_Profile_Custom_Test", None, "Test"),
            ("Tag_Profile_Custom_Test1", None, "Test1"),
            ("Tag_Profile_Custom_Test2", None, "Test2"),
            ("Tag_Profile_Custom_888888_Test", Some("888888"), "Test"),
            ("Tag_Profile_Custom_Abcdefgh", None, "Abcdefgh"),
            ("Tag_Profile_Custom_a", None, "a"),
            ("Tag_Profile_Custom_A1b2C3d4", None, "A1b2C3d4"),
            (
                "Tag_Profile_Custom_1400000000_Lvl9",
                Some("1400000000"),
                "Lvl9",
            ),
            ("Tag_Profile_Custom_0_X", Some("0"), "X"),
        ] {
            assert_eq!(
                check_custom_name(name),
                Ok(CustomName { number, key }),
                "{name}"
            );
        }
    }

    #[test]
    fn names_outside_the_rule_are_refused_with_the_reason() {
        use CustomNameError::*;
        for (name, why) in [
            ("Tag_Profile_Custom_", KeyLength(0)),
            ("Tag_Profile_Custom_Abcdefghi", KeyLength(9)),
            ("Tag_Profile_Custom_888888_", KeyLength(0)),
            ("Tag_Profile_Custom_888888_Abcdefghi", KeyLength(9)),
            ("Tag_Profile_Custom_12345678901_Test", NumberLength(11)),
            ("Tag_Profile_Custom_1Test", KeyCharacters),
            ("Tag_Profile_Custom_888888", KeyCharacters),
            ("Tag_Profile_Custom_888888_1Test", KeyCharacters),
            ("Tag_Profile_Custom_Test_1", KeyCharacters),
            ("Tag_Profile_Custom_Te-st", KeyCharacters),
            ("Tag_Profile_Custom_Te st", KeyCharacters),
            ("Tag_Profile_Custom_Tést", KeyCharacters),
            ("Tag_Profile_Custom__Test", KeyCharacters),
            ("Tag_Profile_Custom_1_2_Test", KeyCharacters),
            ("Tag_Profile_custom_Test", Prefix),
            ("Tag_Profile_IM_Nick", Prefix),
            ("Test", Prefix),
            ("", Prefix),
        ] {
            assert_eq!(check_custom_name(name), Err(why), "{name}");
        }
    }

    #[test]
    fn the_key_limit_counts_bytes_so_multibyte_keys_never_slip_through() {
        // 3 two-byte letters: 6 bytes, under 8, still refused (not ASCII).
        assert_eq!(
            check_custom_name("Tag_Profile_Custom_äöü"),
            Err(CustomNameError::KeyCharacters)
        );
        // 5 two-byte letters: 10 bytes, over the limit.
        assert_eq!(
            check_custom_name("Tag_Profile_Custom_äöüäö"),
            Err(CustomNameError::KeyLength(10))
        );
    }
}
