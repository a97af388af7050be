//! Every standard `Tag_Profile_IM_*` field over HTTP: its default, valid values (with boundaries
//! and every enum value) round-tripping through `portrait_set` + `portrait_get` with the right JSON
//! type, and invalid values refused with their code while the stored value stays.

use portrait_core::schema::StandardTag;
use serde_json::{json, Value};

use crate::helpers::*;

/// One row of the table.
struct Field {
    tag: &'static str,
    default: Value,
    valid: Vec<Value>,
    invalid: Vec<(Value, u64)>,
}

/// `n` bytes of multi-byte UTF-8 padded with ASCII: `深` (3 bytes) repeated, then `a`s.
fn utf8_bytes(n: usize) -> String {
    let s = format!("{}{}", "深".repeat(n / 3), "a".repeat(n % 3));
    assert_eq!(s.len(), n);
    s
}

/// The longest prefix of `s` that fits in `max` bytes without splitting a character.
fn prefix_within(s: &str, max: usize) -> &str {
    let end = s
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|&e| e <= max)
        .last()
        .unwrap_or(0);
    &s[..end]
}

fn text(tag: &'static str, max: usize, sample: &str) -> Field {
    Field {
        tag,
        default: json!(""),
        valid: vec![
            json!(sample),
            json!(""),
            json!(prefix_within("张三 🙂 Ünïcödé", max)),
            json!("a".repeat(max)),
            json!(utf8_bytes(max)),
        ],
        invalid: vec![
            (json!("a".repeat(max + 1)), 40601),
            (json!(utf8_bytes(max + 1)), 40601),
            (json!(format!("{}深", "a".repeat(max - 2))), 40601),
            (json!("badword"), 40005),
            (json!(5), 40610),
            (json!(null), 40610),
            (json!(["x"]), 40610),
            (json!({"v": "x"}), 40610),
        ],
    }
}

fn enumeration(tag: &'static str, values: &[&str], bad: &str) -> Field {
    Field {
        tag,
        default: json!(values[0]),
        // Non-default values first, so that the default being set explicitly is also seen.
        valid: values.iter().rev().map(|v| json!(v)).collect(),
        invalid: vec![
            (json!(bad), 40605),
            (json!(values[1].to_lowercase()), 40605),
            (json!(""), 40605),
            (json!(format!(" {}", values[1])), 40605),
            (json!(1), 40610),
            (json!(null), 40610),
            (json!([values[1]]), 40610),
        ],
    }
}

fn uint32(tag: &'static str, typical: u64) -> Field {
    Field {
        tag,
        default: json!(0),
        valid: vec![json!(typical), json!(0), json!(1), json!(u32::MAX)],
        invalid: vec![
            (json!(u64::from(u32::MAX) + 1), 40605),
            (json!(u64::MAX), 40605),
            (json!(-1), 40605),
            (json!(typical.to_string()), 40610),
            (json!(1.5), 40610),
            (json!(true), 40610),
            (json!(null), 40610),
        ],
    }
}

fn table() -> Vec<Field> {
    vec![
        text("Tag_Profile_IM_Nick", 500, "Alice"),
        enumeration(
            "Tag_Profile_IM_Gender",
            &[
                "Gender_Type_Unknown",
                "Gender_Type_Female",
                "Gender_Type_Male",
            ],
            "Gender_Type_Other",
        ),
        uint32("Tag_Profile_IM_BirthDay", 20_190_419),
        text("Tag_Profile_IM_Location", 16, "CN-440300"),
        text("Tag_Profile_IM_SelfSignature", 500, "hello, world"),
        enumeration(
            "Tag_Profile_IM_AllowType",
            &[
                "AllowType_Type_NeedConfirm",
                "AllowType_Type_AllowAny",
                "AllowType_Type_DenyAny",
            ],
            "AllowType_Type_Maybe",
        ),
        uint32("Tag_Profile_IM_Language", 2052),
        text(
            "Tag_Profile_IM_Image",
            500,
            "https://cdn.example.test/avatar/alice.png",
        ),
        uint32("Tag_Profile_IM_MsgSettings", 1),
        enumeration(
            "Tag_Profile_IM_AdminForbidType",
            &["AdminForbid_Type_None", "AdminForbid_Type_SendOut"],
            "AdminForbid_Type_All",
        ),
        uint32("Tag_Profile_IM_Level", 255),
        uint32("Tag_Profile_IM_Role", 0x0102_0304),
    ]
}

fn row(tag: &str) -> Field {
    table()
        .into_iter()
        .find(|f| f.tag == tag)
        .unwrap_or_else(|| panic!("{tag} is not in the table"))
}

/// Runs one row against a fresh server.
async fn check(tag: &str) {
    let f = row(tag);
    let app = spawn_app().await;
    app.import(&["alice"]).await;

    assert_eq!(
        app.value("alice", f.tag).await,
        Some(f.default.clone()),
        "{}: default of a never-set field",
        f.tag
    );

    for v in &f.valid {
        app.set("alice", &[(f.tag, v.clone())]).await.expect_ok();
        let got = app
            .value("alice", f.tag)
            .await
            .unwrap_or_else(|| panic!("{} is always returned", f.tag));
        assert_eq!(&got, v, "{}: round trip", f.tag);
        assert_eq!(got.is_u64(), v.is_u64(), "{}: JSON type of {got}", f.tag);
        assert_eq!(
            got.is_string(),
            v.is_string(),
            "{}: JSON type of {got}",
            f.tag
        );
    }

    let last = f.valid.last().unwrap();
    for (v, code) in &f.invalid {
        let r = app.set("alice", &[(f.tag, v.clone())]).await;
        assert_eq!(r["ErrorCode"], *code, "{} = {}: {r}", f.tag, short(v));
        r.expect_code(*code);
        assert!(
            r["ErrorInfo"].as_str().unwrap().contains(f.tag),
            "{}: the error names the tag: {r}",
            f.tag
        );
        assert_eq!(
            app.value("alice", f.tag).await.as_ref(),
            Some(last),
            "{}: a refused value leaves the field as it was",
            f.tag
        );
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!(
            "{}… ({} bytes)",
            &s[..s.char_indices().nth(30).map_or(s.len(), |(i, _)| i)],
            v.as_str().map_or(0, str::len)
        )
    } else {
        s
    }
}

#[test]
fn the_table_covers_every_standard_tag_once() {
    let tags: Vec<&str> = table().iter().map(|f| f.tag).collect();
    let all: Vec<&str> = StandardTag::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(tags, all);
    for f in table() {
        assert!(!f.valid.is_empty() && !f.invalid.is_empty(), "{}", f.tag);
    }
}

#[tokio::test]
async fn nick_round_trips_up_to_500_bytes_and_rejects_invalid_values() {
    check("Tag_Profile_IM_Nick").await;
}

#[tokio::test]
async fn gender_round_trips_every_enum_value_and_rejects_invalid_values() {
    check("Tag_Profile_IM_Gender").await;
}

#[tokio::test]
async fn birthday_round_trips_uint32_values_and_rejects_invalid_values() {
    check("Tag_Profile_IM_BirthDay").await;
}

#[tokio::test]
async fn location_round_trips_up_to_16_bytes_and_rejects_invalid_values() {
    check("Tag_Profile_IM_Location").await;
}

#[tokio::test]
async fn self_signature_round_trips_up_to_500_bytes_and_rejects_invalid_values() {
    check("Tag_Profile_IM_SelfSignature").await;
}

#[tokio::test]
async fn allow_type_round_trips_every_enum_value_and_rejects_invalid_values() {
    check("Tag_Profile_IM_AllowType").await;
}

#[tokio::test]
async fn language_round_trips_uint32_values_and_rejects_invalid_values() {
    check("Tag_Profile_IM_Language").await;
}

#[tokio::test]
async fn image_round_trips_up_to_500_bytes_and_rejects_invalid_values() {
    check("Tag_Profile_IM_Image").await;
}

#[tokio::test]
async fn msg_settings_round_trips_uint32_values_and_rejects_invalid_values() {
    check("Tag_Profile_IM_MsgSettings").await;
}

#[tokio::test]
async fn admin_forbid_type_round_trips_every_enum_value_and_rejects_invalid_values() {
    check("Tag_Profile_IM_AdminForbidType").await;
}

#[tokio::test]
async fn level_round_trips_uint32_values_and_rejects_invalid_values() {
    check("Tag_Profile_IM_Level").await;
}

#[tokio::test]
async fn role_round_trips_uint32_values_and_rejects_invalid_values() {
    check("Tag_Profile_IM_Role").await;
}

#[tokio::test]
async fn all_twelve_standard_fields_can_be_set_in_one_call_and_read_back_together() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let rows = table();
    // The first valid value of each field (non-default for enums).
    let items: Vec<(&str, Value)> = rows.iter().map(|f| (f.tag, f.valid[0].clone())).collect();
    app.set("alice", &items).await.expect_ok();
    let tags: Vec<&str> = rows.iter().map(|f| f.tag).collect();
    let got = app.profile("alice", &tags).await;
    for (tag, v) in &items {
        assert_eq!(&got[*tag], v, "{tag}");
    }
}
