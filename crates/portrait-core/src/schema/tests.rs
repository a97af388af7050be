//! Tests of the schema: standard and custom fields, permissions, limits, words.

use super::*;
use serde_json::json;

fn schema() -> Schema {
    Schema::new(
        vec![
            CustomField::new(
                "Tag_Profile_Custom_Hobby",
                CustomKind::String,
                8,
                Perms::ALL,
                Perms::ALL,
            )
            .unwrap(),
            CustomField::new(
                "Tag_Profile_Custom_Score",
                CustomKind::Integer,
                0,
                Perms::ALL,
                Perms {
                    user: false,
                    admin: true,
                },
            )
            .unwrap(),
            CustomField::new(
                "Tag_Profile_Custom_Secret",
                CustomKind::String,
                500,
                Perms {
                    user: false,
                    admin: true,
                },
                Perms::ALL,
            )
            .unwrap(),
        ],
        &["badword", "敏感"],
    )
    .unwrap()
}

#[test]
fn every_standard_tag_round_trips_through_its_name() {
    for t in StandardTag::ALL {
        assert_eq!(StandardTag::from_name(t.name()), Some(t));
        assert!(t.name().starts_with(STANDARD_PREFIX));
    }
    assert_eq!(
        StandardTag::from_name("Tag_Profile_IM_nick"),
        None,
        "tag names are case-sensitive"
    );
}

#[test]
fn byte_limits_count_utf8_bytes() {
    let s = schema();
    // 5 CJK characters = 15 bytes fit Location (16); 6 = 18 bytes do not.
    assert!(s
        .parse_item(
            "Tag_Profile_IM_Location",
            &json!("深圳南山区科"[..15]),
            Actor::Admin
        )
        .is_ok());
    let err = s
        .parse_item(
            "Tag_Profile_IM_Location",
            &json!("深圳南山区科"),
            Actor::Admin,
        )
        .unwrap_err();
    assert_eq!(
        err,
        FieldError::TooLong {
            tag: "Tag_Profile_IM_Location".into(),
            max: 16,
            len: 18
        }
    );
    assert_eq!(err.code().0, 40601);
    assert!(s
        .parse_item("Tag_Profile_IM_Nick", &json!("a".repeat(500)), Actor::Admin)
        .is_ok());
    assert_eq!(
        s.parse_item("Tag_Profile_IM_Nick", &json!("a".repeat(501)), Actor::Admin)
            .unwrap_err()
            .code()
            .0,
        40601
    );
    assert_eq!(
        s.parse_item(
            "Tag_Profile_Custom_Hobby",
            &json!("123456789"),
            Actor::Admin
        )
        .unwrap_err()
        .code()
        .0,
        40601
    );
}

#[test]
fn enum_and_integer_fields_check_value_and_type() {
    let s = schema();
    assert_eq!(
        s.parse_item(
            "Tag_Profile_IM_Gender",
            &json!("Gender_Type_Other"),
            Actor::Admin
        )
        .unwrap_err()
        .code()
        .0,
        40605
    );
    assert_eq!(
        s.parse_item("Tag_Profile_IM_Gender", &json!(1), Actor::Admin)
            .unwrap_err()
            .code()
            .0,
        40610
    );
    assert_eq!(
        s.parse_item("Tag_Profile_IM_Level", &json!(-1), Actor::Admin)
            .unwrap_err()
            .code()
            .0,
        40605
    );
    assert_eq!(
        s.parse_item(
            "Tag_Profile_IM_Level",
            &json!(4_294_967_296u64),
            Actor::Admin
        )
        .unwrap_err()
        .code()
        .0,
        40605
    );
    assert_eq!(
        s.parse_item("Tag_Profile_IM_Level", &json!("3"), Actor::Admin)
            .unwrap_err()
            .code()
            .0,
        40610
    );
    assert_eq!(
        s.parse_item("Tag_Profile_IM_Level", &json!(1.5), Actor::Admin)
            .unwrap_err()
            .code()
            .0,
        40610
    );
    assert_eq!(
        s.parse_item(
            "Tag_Profile_IM_Level",
            &json!(4_294_967_295u64),
            Actor::Admin
        )
        .unwrap()
        .1,
        ProfileValue::Int(4_294_967_295)
    );
    assert_eq!(
        s.parse_item("Tag_Profile_Custom_Score", &json!(u64::MAX), Actor::Admin)
            .unwrap()
            .1,
        ProfileValue::Int(u64::MAX)
    );
}

#[test]
fn permissions_are_checked_per_actor() {
    let s = schema();
    assert_eq!(
        s.parse_item(
            "Tag_Profile_IM_AdminForbidType",
            &json!("AdminForbid_Type_SendOut"),
            Actor::User
        )
        .unwrap_err()
        .code()
        .0,
        40008
    );
    assert!(s
        .parse_item(
            "Tag_Profile_IM_AdminForbidType",
            &json!("AdminForbid_Type_SendOut"),
            Actor::Admin
        )
        .is_ok());
    assert_eq!(
        s.parse_item("Tag_Profile_Custom_Score", &json!(1), Actor::User)
            .unwrap_err()
            .code()
            .0,
        40008
    );
    assert_eq!(
        s.resolve_readable("Tag_Profile_Custom_Secret", Actor::User)
            .unwrap_err()
            .code()
            .0,
        40007
    );
    assert!(s
        .resolve_readable("Tag_Profile_Custom_Secret", Actor::Admin)
        .is_ok());
    assert_eq!(
        s.resolve_readable("Tag_Profile_Custom_Nope", Actor::Admin)
            .unwrap_err()
            .code()
            .0,
        40009
    );
}

#[test]
fn sensitive_words_match_case_insensitively_and_in_any_script() {
    let s = schema();
    assert_eq!(
        s.parse_item(
            "Tag_Profile_IM_Nick",
            &json!("a BadWord here"),
            Actor::Admin
        )
        .unwrap_err()
        .code()
        .0,
        40005
    );
    assert_eq!(
        s.parse_item(
            "Tag_Profile_IM_SelfSignature",
            &json!("很敏感的"),
            Actor::Admin
        )
        .unwrap_err()
        .code()
        .0,
        40005
    );
    assert!(s
        .parse_item("Tag_Profile_IM_Nick", &json!("good"), Actor::Admin)
        .is_ok());
}

#[test]
fn custom_field_declarations_are_validated() {
    let ok = |n: &str| CustomField::new(n, CustomKind::String, 10, Perms::ALL, Perms::ALL);
    assert!(ok("Tag_Profile_Custom_Abcdefgh").is_ok());
    assert!(ok("Tag_Profile_Custom_Abcdefghi").is_err(), "9 letters");
    // The vendor's documents use digits and the legacy numbered form (seeds 000, 003).
    assert!(ok("Tag_Profile_Custom_Ab1").is_ok(), "digit");
    assert!(ok("Tag_Profile_Custom_888888_Test").is_ok(), "legacy form");
    assert!(ok("Tag_Profile_Custom_1Ab").is_err(), "starts with a digit");
    assert!(ok("Tag_Profile_Custom_").is_err());
    assert!(ok("Tag_Profile_IM_Nick").is_err());
    let msg = ok("Tag_Profile_Custom_Abcdefghi").unwrap_err().to_string();
    assert!(
        msg.contains("1 to 8") && msg.contains("888888_Test"),
        "{msg}"
    );
    assert!(CustomField::new(
        "Tag_Profile_Custom_A",
        CustomKind::String,
        501,
        Perms::ALL,
        Perms::ALL
    )
    .is_err());
    assert!(CustomField::new(
        "Tag_Profile_Custom_A",
        CustomKind::String,
        5,
        Perms::default(),
        Perms::ALL
    )
    .is_err());
    let many: Vec<_> = (0..21)
        .map(|i| {
            ok(&format!(
                "Tag_Profile_Custom_{}",
                "abcdefghijklmnopqrstu".chars().nth(i).unwrap()
            ))
            .unwrap()
        })
        .collect();
    assert_eq!(
        Schema::new::<&str>(many, &[]).unwrap_err(),
        SchemaError::TooMany(21)
    );
}

#[test]
fn defaults_match_the_vendor() {
    assert_eq!(
        StandardTag::Gender.default_value(),
        ProfileValue::Str("Gender_Type_Unknown".into())
    );
    assert_eq!(
        StandardTag::AllowType.default_value(),
        ProfileValue::Str("AllowType_Type_NeedConfirm".into())
    );
    assert_eq!(
        StandardTag::AdminForbidType.default_value(),
        ProfileValue::Str("AdminForbid_Type_None".into())
    );
    assert_eq!(
        StandardTag::Nick.default_value(),
        ProfileValue::Str(String::new())
    );
    assert_eq!(StandardTag::Level.default_value(), ProfileValue::Int(0));
}

#[test]
fn whole_numbers_in_float_form_are_integers() {
    let s = schema();
    let parse = |tag: &str, text: &str| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        s.parse_item(tag, &v, Actor::Admin)
    };
    for (text, want) in [
        ("1.0", 1),
        ("1e2", 100),
        ("1E2", 100),
        ("2.5e1", 25),
        ("-0", 0),
        ("-0.0", 0),
        ("0e5", 0),
        ("4294967295.0", 4_294_967_295),
    ] {
        for tag in [
            "Tag_Profile_IM_Level",
            "Tag_Profile_IM_Role",
            "Tag_Profile_IM_BirthDay",
            "Tag_Profile_Custom_Score",
        ] {
            assert_eq!(
                parse(tag, text).unwrap(),
                (s.resolve(tag).unwrap(), ProfileValue::Int(want)),
                "{tag} = {text}"
            );
        }
    }
    // Up to 2^53 a custom integer field takes the float form too.
    assert_eq!(
        parse("Tag_Profile_Custom_Score", "9007199254740992.0")
            .unwrap()
            .1,
        ProfileValue::Int(9_007_199_254_740_992)
    );
    assert_eq!(
        parse("Tag_Profile_Custom_Score", "1e15").unwrap().1,
        ProfileValue::Int(1_000_000_000_000_000)
    );
}

#[test]
fn fractions_are_the_wrong_type_and_out_of_range_whole_floats_invalid_values() {
    let s = schema();
    let code = |tag: &str, text: &str| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        s.parse_item(tag, &v, Actor::Admin).unwrap_err().code().0
    };
    for tag in ["Tag_Profile_IM_Level", "Tag_Profile_Custom_Score"] {
        for text in ["1.5", "1e-3", "-0.5", "0.1"] {
            assert_eq!(code(tag, text), 40610, "{tag} = {text}");
        }
        // Negative whole numbers are out of range, as the integer -1 is.
        for text in ["-1.0", "-1e2"] {
            assert_eq!(code(tag, text), 40605, "{tag} = {text}");
        }
        // Beyond u64 in float form: out of range.
        for text in ["1e20", "1e300", "18446744073709551616.0"] {
            assert_eq!(code(tag, text), 40605, "{tag} = {text}");
        }
    }
    // Beyond uint32 for a standard field: out of range, as 4294967296 is.
    assert_eq!(code("Tag_Profile_IM_Level", "4294967296.0"), 40605);
    assert_eq!(code("Tag_Profile_IM_Level", "1e10"), 40605);
    // Beyond 2^53 a double cannot hold the value exactly: write it as a plain integer.
    assert_eq!(
        code("Tag_Profile_Custom_Score", "9007199254740993.0"),
        40610
    );
    assert_eq!(code("Tag_Profile_Custom_Score", "1e19"), 40610);
    assert_eq!(
        s.parse_item(
            "Tag_Profile_Custom_Score",
            &serde_json::from_str("9007199254740993").unwrap(),
            Actor::Admin
        )
        .unwrap()
        .1,
        ProfileValue::Int(9_007_199_254_740_993)
    );
}

#[test]
fn a_whole_number_beyond_u64_is_an_invalid_value_not_a_wrong_type() {
    let s = schema();
    let huge: serde_json::Value = serde_json::from_str("18446744073709551616").unwrap();
    let err = s
        .parse_item("Tag_Profile_Custom_Score", &huge, Actor::Admin)
        .unwrap_err();
    assert_eq!(err.code().0, 40605);
    let err = s
        .parse_item("Tag_Profile_IM_Level", &huge, Actor::Admin)
        .unwrap_err();
    assert_eq!(err.code().0, 40605);
}
