//! The packed form of profiles and change items: a run of `key value` entries, with no
//! separators, that costs about half the bytes of the JSON it replaced (W5 of issue #6: a profile
//! is stored twice, once in `accounts` and once in its change, so its size is the disk footprint).
//!
//! ```text
//! key   := CODE                    a standard tag: one letter of STANDARD_CODES
//!        | '+' LEN ':' NAME        Tag_Profile_Custom_NAME
//!        | '/' LEN ':' SHORT       any other name, as short_tag writes it
//! value := DIGITS '#'              an integer (u64)
//!        | DIGITS '*'              an enum field's value by its index in ENUM_VALUES
//!        | LEN '\'' BYTES          a string of LEN bytes (UTF-8, no NUL)
//!        | '"' … '"'               a string as a JSON literal (used when it holds a NUL,
//!                                  which PostgreSQL text cannot store)
//! ```
//!
//! `LEN` and `DIGITS` are decimal. A profile lists each tag once (sorted by full name), change
//! items in their order. The empty string is the empty profile / no items. A stored value that
//! starts with `{` or `[` is the JSON of earlier versions and still decodes, so existing data
//! directories and databases need no migration; every write stores the packed form.
//!
//! The codes and enum tables are part of the storage format: never change or reorder an entry,
//! only append.

use std::borrow::Cow;
use std::fmt::Write;

use portrait_core::schema::{StandardTag, CUSTOM_PREFIX};
use portrait_core::ProfileValue;

use super::{short_tag, FieldKey, FieldValue};

/// One letter per standard tag.
const STANDARD_CODES: [(StandardTag, u8); 12] = [
    (StandardTag::Nick, b'N'),
    (StandardTag::Gender, b'G'),
    (StandardTag::BirthDay, b'B'),
    (StandardTag::Location, b'O'),
    (StandardTag::SelfSignature, b'S'),
    (StandardTag::AllowType, b'A'),
    (StandardTag::Language, b'L'),
    (StandardTag::Image, b'I'),
    (StandardTag::MsgSettings, b'M'),
    (StandardTag::AdminForbidType, b'F'),
    (StandardTag::Level, b'V'),
    (StandardTag::Role, b'R'),
];

/// The values an enum field stores by index (frozen copies of the schema's lists: a test
/// checks that they hold every value the schema accepts).
pub(super) const ENUM_VALUES: [(StandardTag, &[&str]); 3] = [
    (
        StandardTag::Gender,
        &[
            "Gender_Type_Unknown",
            "Gender_Type_Female",
            "Gender_Type_Male",
        ],
    ),
    (
        StandardTag::AllowType,
        &[
            "AllowType_Type_NeedConfirm",
            "AllowType_Type_AllowAny",
            "AllowType_Type_DenyAny",
        ],
    ),
    (
        StandardTag::AdminForbidType,
        &["AdminForbid_Type_None", "AdminForbid_Type_SendOut"],
    ),
];

fn enum_values(tag: StandardTag) -> &'static [&'static str] {
    ENUM_VALUES
        .iter()
        .find(|(t, _)| *t == tag)
        .map_or(&[], |(_, v)| v)
}

fn code_of(name: &str) -> Option<(StandardTag, u8)> {
    STANDARD_CODES
        .iter()
        .copied()
        .find(|(t, _)| t.name() == name)
}

/// The entries packed into one string.
pub(super) fn encode<'a>(entries: impl IntoIterator<Item = (&'a str, &'a ProfileValue)>) -> String {
    let mut out = String::new();
    for (name, value) in entries {
        let standard = match code_of(name) {
            Some((tag, code)) => {
                out.push(code as char);
                Some(tag)
            }
            None => {
                match name.strip_prefix(CUSTOM_PREFIX) {
                    Some(rest) => push_len_prefixed(&mut out, '+', rest, ':'),
                    None => push_len_prefixed(&mut out, '/', &short_tag(name), ':'),
                }
                None
            }
        };
        match value {
            ProfileValue::Int(n) => {
                let _ = write!(out, "{n}#");
            }
            ProfileValue::Str(s) => {
                let index = standard.and_then(|t| enum_values(t).iter().position(|v| v == s));
                if let Some(i) = index {
                    let _ = write!(out, "{i}*");
                } else if s.contains('\0') {
                    let _ = write!(out, "{}", serde_json::Value::from(s.as_str()));
                } else {
                    out.reserve(s.len() + 4);
                    let _ = write!(out, "{}'", s.len());
                    out.push_str(s);
                }
            }
        }
    }
    out
}

/// `marker`, then `text`'s byte length, `end`, and `text`.
fn push_len_prefixed(out: &mut String, marker: char, text: &str, end: char) {
    let _ = write!(out, "{marker}{}{end}", text.len());
    out.push_str(text);
}

/// The entries of a packed string, as (full tag name, value); an error says what is wrong.
pub(super) fn decode(
    packed: &str,
) -> impl Iterator<Item = Result<(String, ProfileValue), String>> + '_ {
    entries(packed).map(|e| e.map(|(k, v)| (k.full_name(), v.into_owned())))
}

/// The entries of a packed string, borrowed from it; an error says what is wrong (and ends
/// the iteration).
pub(super) fn entries(
    packed: &str,
) -> impl Iterator<Item = Result<(FieldKey<'_>, FieldValue<'_>), String>> + '_ {
    let mut reader = Reader { s: packed, at: 0 };
    std::iter::from_fn(move || {
        if reader.at >= reader.s.len() {
            return None;
        }
        let entry = reader.entry();
        if entry.is_err() {
            reader.at = reader.s.len(); // stop after the first error
        }
        Some(entry)
    })
}

struct Reader<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn entry(&mut self) -> Result<(FieldKey<'a>, FieldValue<'a>), String> {
        let key = self.key()?;
        let standard = match key {
            FieldKey::Standard(tag) => Some(tag),
            _ => None,
        };
        let value = self.value(standard)?;
        Ok((key, value))
    }

    fn key(&mut self) -> Result<FieldKey<'a>, String> {
        let at = self.at;
        let b = self.s.as_bytes()[at];
        self.at += 1;
        match b {
            b'+' => Ok(FieldKey::Custom(self.len_prefixed(b':')?)),
            b'/' => Ok(FieldKey::Other(self.len_prefixed(b':')?)),
            _ => match STANDARD_CODES.iter().find(|(_, c)| *c == b) {
                Some((tag, _)) => Ok(FieldKey::Standard(*tag)),
                None => Err(format!("no tag starts at byte {at}")),
            },
        }
    }

    fn value(&mut self, standard: Option<StandardTag>) -> Result<FieldValue<'a>, String> {
        let at = self.at;
        if self.s.as_bytes().get(at) == Some(&b'"') {
            let mut literal =
                serde_json::Deserializer::from_str(&self.s[at..]).into_iter::<String>();
            let s = match literal.next() {
                Some(Ok(s)) => s,
                _ => return Err(format!("bad string literal at byte {at}")),
            };
            self.at += literal.byte_offset();
            return Ok(FieldValue::Str(Cow::Owned(s)));
        }
        let n = self.digits()?;
        match self.s.as_bytes().get(self.at) {
            Some(b'#') => {
                self.at += 1;
                Ok(FieldValue::Int(n))
            }
            Some(b'*') => {
                self.at += 1;
                let values = standard.map_or(&[][..], enum_values);
                usize::try_from(n)
                    .ok()
                    .and_then(|i| values.get(i))
                    .map(|v| FieldValue::Str(Cow::Borrowed(*v)))
                    .ok_or_else(|| format!("no enum value {n} at byte {at}"))
            }
            Some(b'\'') => {
                self.at += 1;
                Ok(FieldValue::Str(Cow::Borrowed(self.take(n)?)))
            }
            _ => Err(format!("no value at byte {at}")),
        }
    }

    /// `LEN end BYTES`: the bytes.
    fn len_prefixed(&mut self, end: u8) -> Result<&'a str, String> {
        let n = self.digits()?;
        if self.s.as_bytes().get(self.at) != Some(&end) {
            return Err(format!("no {:?} at byte {}", end as char, self.at));
        }
        self.at += 1;
        self.take(n)
    }

    fn take(&mut self, n: u64) -> Result<&'a str, String> {
        let at = self.at;
        let text = usize::try_from(n)
            .ok()
            .and_then(|n| self.s.get(at..at.checked_add(n)?))
            .ok_or_else(|| format!("{n} bytes at byte {at} run past the end"))?;
        self.at += text.len();
        Ok(text)
    }

    fn digits(&mut self) -> Result<u64, String> {
        let at = self.at;
        let mut n: u64 = 0;
        while let Some(d) = self
            .s
            .as_bytes()
            .get(self.at)
            .filter(|b| b.is_ascii_digit())
        {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| format!("number at byte {at} is too large"))?;
            self.at += 1;
        }
        if self.at == at {
            return Err(format!("no number at byte {at}"));
        }
        Ok(n)
    }
}
