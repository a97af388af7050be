//! JSON request bodies (`portrait_core::wire`) and the schema check of profile items
//! (`portrait_core::schema`) on arbitrary bytes, as the handlers take them: parse the body into
//! each request type, then validate every `{Tag, Value}` item and every UserID.
//!
//! Checks: nothing panics; a value that validates round-trips (its JSON validates again to the
//! same tag and value, and it survives serde and the storage codec); the request types that
//! serialize read back what they wrote.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portrait_core::schema::{Actor, CustomField, CustomKind, Perms, Schema};
use portrait_core::wire::{
    AccountCheckRequest, AccountDeleteRequest, AccountImportRequest, MultiAccountImportRequest,
    PortraitGetRequest, PortraitImportRequest, PortraitSetRequest, ProfileItem,
    UpdateMyProfileRequest, UserIdItem,
};
use portrait_core::{Identifier, ProfileValue};
use portrait_store::fuzzing as codec;
use serde::{de::DeserializeOwned, Serialize};

/// An app's schema with a custom field of each kind, an admin-only one and sensitive words.
fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let admin = Perms {
            user: false,
            admin: true,
        };
        let fields = vec![
            CustomField::new(
                "Tag_Profile_Custom_Str",
                CustomKind::String,
                16,
                Perms::ALL,
                Perms::ALL,
            )
            .unwrap(),
            CustomField::new(
                "Tag_Profile_Custom_Num",
                CustomKind::Integer,
                0,
                Perms::ALL,
                admin,
            )
            .unwrap(),
            CustomField::new(
                "Tag_Profile_Custom_Hid",
                CustomKind::String,
                500,
                admin,
                admin,
            )
            .unwrap(),
        ];
        Schema::new(fields, &["badword", "坏词"]).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some(r) = parse::<PortraitSetRequest>(data) {
        user_ids(r.from_account.iter());
        items(r.profile_item.as_deref());
    }
    if let Some(r) = parse::<PortraitGetRequest>(data) {
        user_ids(r.to_account.iter().flatten());
        for tag in r.tag_list.iter().flatten() {
            for actor in [Actor::Admin, Actor::User] {
                let _ = schema().resolve_readable(tag, actor);
            }
        }
    }
    if let Some(r) = parse::<AccountImportRequest>(data) {
        import(&r);
    }
    if let Some(r) = parse::<MultiAccountImportRequest>(data) {
        user_ids(r.accounts.iter().flatten());
        r.account_list.iter().flatten().for_each(import);
    }
    if let Some(r) = parse::<AccountDeleteRequest>(data) {
        user_ids(
            r.delete_item
                .iter()
                .flatten()
                .filter_map(|i| i.user_id.as_ref()),
        );
    }
    if let Some(r) = parse::<AccountCheckRequest>(data) {
        let _ = format!("{r:?}");
    }
    if let Some(r) = parse::<UserIdItem>(data) {
        user_ids(r.user_id.iter());
    }
    if let Some(r) = parse::<PortraitImportRequest>(data) {
        if !r
            .account_list
            .iter()
            .flatten()
            .any(|a| has_float(a.profile_item.as_deref()))
        {
            round_trip(&r);
        }
        for a in r.account_list.iter().flatten() {
            user_ids(a.user_id.iter());
            items(a.profile_item.as_deref());
        }
    }
    if let Some(r) = parse::<UpdateMyProfileRequest>(data) {
        if !has_float(r.profile_item.as_deref()) {
            round_trip(&r);
        }
        items(r.profile_item.as_deref());
    }
});

fn parse<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    serde_json::from_slice(data).ok()
}

/// Whether a value holds a non-integer number. serde_json (without its `float_roundtrip`
/// feature) may read a float it wrote back one unit in the last place off, so such requests are
/// not compared after a round trip; no float is a valid profile value (they are refused).
fn has_float(items: Option<&[ProfileItem]>) -> bool {
    fn float(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) => n.is_f64(),
            serde_json::Value::Array(a) => a.iter().any(float),
            serde_json::Value::Object(o) => o.values().any(float),
            _ => false,
        }
    }
    items.unwrap_or_default().iter().any(|i| float(&i.value))
}

/// Serializing, reading back and serializing again gives the same JSON.
fn round_trip<T: Serialize + DeserializeOwned>(r: &T) {
    let json = serde_json::to_string(r).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
}

fn user_ids<'a>(ids: impl Iterator<Item = &'a String>) {
    for id in ids {
        if let Ok(parsed) = Identifier::parse(id) {
            assert_eq!(parsed.as_str(), id);
        }
    }
}

fn import(r: &AccountImportRequest) {
    user_ids(r.user_id.iter());
    for s in r.nick.iter().chain(&r.face_url) {
        let _ = schema().check_text(portrait_core::schema::StandardTag::Nick, s);
        let _ = schema().check_text(portrait_core::schema::StandardTag::Image, s);
    }
}

fn items(items: Option<&[ProfileItem]>) {
    let mut valid = Vec::new();
    for item in items.unwrap_or_default() {
        for actor in [Actor::Admin, Actor::User] {
            let Ok((tag, value)) = schema().parse_item(&item.tag, &item.value, actor) else {
                continue;
            };
            assert_eq!(tag.name(), item.tag);
            assert_eq!(
                schema().parse_item(tag.name(), &value.to_json(), actor),
                Ok((tag.clone(), value.clone())),
                "a valid value validates again from its JSON"
            );
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(serde_json::from_str::<ProfileValue>(&json).unwrap(), value);
            valid.push((tag.name().to_owned(), value));
        }
    }
    // What validates is stored and read back as it was.
    let packed = codec::encode_items(&valid).unwrap();
    assert_eq!(codec::decode_items(&packed).unwrap(), valid);
    let profile: codec::Fields = valid.into_iter().collect();
    let packed = codec::encode_profile(&profile).unwrap();
    assert_eq!(codec::decode_profile(&packed).unwrap(), profile);
}
