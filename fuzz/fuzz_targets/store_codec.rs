//! The packed storage codec of `portrait-store` (profiles and change items, packed or legacy
//! JSON) on arbitrary input.
//!
//! The first byte picks the form: even, the rest is a stored column (profile, change items, a
//! change row) to decode; odd, the rest is turned into fields to encode. Checks: decoding never
//! panics; whatever decodes, encoded again, decodes to the same; encode → decode is the identity,
//! also through the read cache's `PackedProfile`.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use portrait_core::schema::StandardTag;
use portrait_core::{ProfileValue, Tag};
use portrait_store::fuzzing as codec;
use portrait_store::{PackedProfile, Profile};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(stored) = std::str::from_utf8(rest) {
            decode(stored, mode);
        }
    } else if let Ok(items) = entries(&mut Unstructured::new(rest)) {
        encode(items);
    }
});

fn decode(stored: &str, mode: u8) {
    if let Ok(fields) = codec::decode_profile(stored) {
        let again = codec::encode_profile(&fields).unwrap();
        assert_eq!(codec::decode_profile(&again).unwrap(), fields);
        let profile = Profile {
            fields,
            version: 1,
            updated_at_ms: 0,
        };
        assert_eq!(PackedProfile::new(&profile).to_profile(), profile);
    }
    if let Ok(items) = codec::decode_items(stored) {
        let again = codec::encode_items(&items).unwrap();
        assert_eq!(codec::decode_items(&again).unwrap(), items);
    }
    let kind = ["set", "import", "delete", "?"][usize::from(mode >> 1) % 4];
    let version = i64::from(mode >> 3) - 2;
    let _ = codec::decode_change(version, kind, stored);
    let nick = (
        Tag::Standard(StandardTag::Nick),
        ProfileValue::Str("n".into()),
    );
    if let Ok(merged) = codec::merge_items(stored, &[nick]) {
        let fields = codec::decode_profile(&merged).unwrap();
        assert_eq!(fields["Tag_Profile_IM_Nick"], ProfileValue::Str("n".into()));
    }
}

fn encode(items: Vec<(String, ProfileValue)>) {
    let packed = codec::encode_items(&items).unwrap();
    assert_eq!(codec::decode_items(&packed).unwrap(), items);
    let fields: codec::Fields = items.into_iter().collect();
    let packed = codec::encode_profile(&fields).unwrap();
    assert_eq!(codec::decode_profile(&packed).unwrap(), fields);
    let profile = Profile {
        fields,
        version: 7,
        updated_at_ms: -1,
    };
    let cached = PackedProfile::new(&profile);
    assert_eq!(cached.to_profile(), profile);
    for ((key, value), (name, expected)) in cached.fields().zip(&profile.fields) {
        assert_eq!(&key.full_name(), name);
        assert_eq!(&value.into_owned(), expected);
    }
}

const STANDARD: [StandardTag; 12] = [
    StandardTag::Nick,
    StandardTag::Gender,
    StandardTag::BirthDay,
    StandardTag::Location,
    StandardTag::SelfSignature,
    StandardTag::AllowType,
    StandardTag::Language,
    StandardTag::Image,
    StandardTag::MsgSettings,
    StandardTag::AdminForbidType,
    StandardTag::Level,
    StandardTag::Role,
];

/// Fields of every shape: standard, custom and other tags; integers, strings (also with NUL, and
/// enum values of the enum fields).
fn entries(u: &mut Unstructured<'_>) -> Result<Vec<(String, ProfileValue)>> {
    let mut out = Vec::new();
    while !u.is_empty() && out.len() < 64 {
        let name = match u.int_in_range(0..=3u8)? {
            0 | 1 => u.choose(&STANDARD)?.name().to_owned(),
            2 => format!("Tag_Profile_Custom_{}", u.arbitrary::<&str>()?),
            _ => u.arbitrary::<String>()?,
        };
        let value = match u.int_in_range(0..=3u8)? {
            0 => ProfileValue::Int(u.arbitrary()?),
            1 => ProfileValue::Str(
                (*u.choose(&[
                    "Gender_Type_Male",
                    "AllowType_Type_DenyAny",
                    "AdminForbid_Type_SendOut",
                    "",
                ])?)
                .to_owned(),
            ),
            _ => ProfileValue::Str(u.arbitrary()?),
        };
        out.push((name, value));
    }
    Ok(out)
}
