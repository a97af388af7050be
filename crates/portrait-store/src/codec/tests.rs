//! Unit tests of the column encoding and the packed format.

use super::*;

#[test]
fn tag_names_shorten_and_expand_losslessly() {
    for name in [
        "Tag_Profile_IM_Nick",
        "Tag_Profile_Custom_Hobby",
        "Tag_Profile_",
        "Tag_Profile_/odd",
        "NoPrefix",
        "/slash",
        "",
    ] {
        assert_eq!(full_tag(&short_tag(name)), name, "{name:?}");
    }
    assert_eq!(short_tag("Tag_Profile_IM_Nick"), "IM_Nick");
    assert_eq!(short_tag("Tag_Profile_Custom_Hobby"), "Custom_Hobby");
}

fn text(s: &str) -> ProfileValue {
    ProfileValue::Str(s.into())
}

#[test]
fn profiles_are_stored_packed_with_codes_and_enum_indexes() {
    let mut fields = Fields::new();
    fields.insert("Tag_Profile_IM_Nick".into(), text("Ann"));
    fields.insert("Tag_Profile_IM_Gender".into(), text("Gender_Type_Male"));
    fields.insert("Tag_Profile_IM_Level".into(), ProfileValue::Int(3));
    fields.insert(
        "Tag_Profile_Custom_Score".into(),
        ProfileValue::Int(u64::MAX),
    );
    let packed = encode_profile(&fields).unwrap();
    // The format is frozen: this exact string must keep decoding to these fields.
    assert_eq!(packed, "+5:Score18446744073709551615#G2*V3#N3'Ann");
    assert_eq!(decode_profile(&packed, "u").unwrap(), fields);
    assert_eq!(encode_profile(&Fields::new()).unwrap(), "");
    assert_eq!(decode_profile("", "u").unwrap(), Fields::new());
}

#[test]
fn profiles_and_items_written_as_json_by_earlier_versions_still_decode() {
    let old = r#"{"Custom_Score":18446744073709551615,"IM_Nick":"Ann","/NoPrefix":"x"}"#;
    let fields = decode_profile(old, "u").unwrap();
    assert_eq!(
        fields["Tag_Profile_Custom_Score"],
        ProfileValue::Int(u64::MAX)
    );
    assert_eq!(fields["Tag_Profile_IM_Nick"], text("Ann"));
    assert_eq!(fields["NoPrefix"], text("x"));
    assert_eq!(decode_profile("{}", "u").unwrap(), Fields::new());
    let items = decode_items(r#"[["IM_Level",3],["IM_Nick","A\u0000"]]"#, 1).unwrap();
    assert_eq!(
        items,
        [
            ("Tag_Profile_IM_Level".to_owned(), ProfileValue::Int(3)),
            ("Tag_Profile_IM_Nick".to_owned(), text("A\0")),
        ]
    );
    // A merge into an old profile writes the packed form.
    let merged = merge_items(
        r#"{"IM_Nick":"A"}"#,
        "u",
        &[(
            Tag::Standard(portrait_core::schema::StandardTag::Level),
            ProfileValue::Int(3),
        )],
    )
    .unwrap();
    assert_eq!(merged, "V3#N1'A");
}

#[test]
fn every_tag_and_value_survives_packing_in_order() {
    let names = [
        "Tag_Profile_IM_Nick",
        "Tag_Profile_IM_Gender",
        "Tag_Profile_IM_AllowType",
        "Tag_Profile_IM_AdminForbidType",
        "Tag_Profile_IM_Level",
        "Tag_Profile_Custom_Hobby",
        "Tag_Profile_Custom_a:b",
        "Tag_Profile_Custom_9",
        "Tag_Profile_Custom_",
        "Tag_Profile_IM_Unknown",
        "Tag_Profile_",
        "Tag_Profile_/odd",
        "NoPrefix",
        "/slash",
        "",
    ];
    let values = [
        ProfileValue::Int(0),
        ProfileValue::Int(7),
        ProfileValue::Int(u64::MAX),
        text(""),
        text("Gender_Type_Male"),
        text("AllowType_Type_DenyAny"),
        text("AdminForbid_Type_SendOut"),
        text("Gender_Type_Other"),
        text("123"),
        text("12#"),
        text("3'abc"),
        text("\"quoted\" 'single'"),
        text("nul:\0 tab:\t newline:\n"),
        text("\0"),
        text("张三 🙂 Ünïcödé"),
        text("+5:Score1#"),
    ];
    let mut items = Vec::new();
    for name in names {
        for value in &values {
            items.push((name, value));
        }
    }
    let packed = encode_items(items.iter().map(|(n, v)| (*n, *v))).unwrap();
    assert!(!packed.contains('\0'), "a NUL is never stored raw");
    let decoded = decode_items(&packed, 1).unwrap();
    assert_eq!(decoded.len(), items.len());
    for ((name, value), (dn, dv)) in items.iter().zip(&decoded) {
        assert_eq!((*name, *value), (dn.as_str(), dv));
    }
}

#[test]
fn a_packed_profile_reads_back_every_tag_and_value_in_place() {
    let values = [
        ProfileValue::Int(u64::MAX),
        text(""),
        text("Gender_Type_Female"),
        text("AllowType_Type_AllowAny"),
        text("nul:\0 \"q\" 3'x"),
        text("张三 🙂"),
    ];
    let names = [
        "Tag_Profile_IM_Nick",
        "Tag_Profile_IM_Gender",
        "Tag_Profile_IM_AllowType",
        "Tag_Profile_Custom_Hobby",
        "Tag_Profile_Custom_a:b",
        "Tag_Profile_IM_Unknown",
        "NoPrefix",
    ];
    for value in &values {
        let fields: Fields = names
            .iter()
            .map(|n| ((*n).to_owned(), value.clone()))
            .collect();
        let profile = Profile {
            fields,
            version: 9,
            updated_at_ms: -1,
        };
        let packed = PackedProfile::new(&profile);
        assert_eq!(packed.to_profile(), profile);
        assert_eq!((packed.version(), packed.updated_at_ms()), (9, -1));
        assert_eq!(packed.fields().count(), names.len());
        for name in names {
            let tag = match portrait_core::schema::StandardTag::from_name(name) {
                Some(t) => Tag::Standard(t),
                None => Tag::Custom(name.to_owned()),
            };
            let hits: Vec<_> = packed.fields().filter(|(k, _)| k.is(&tag)).collect();
            assert_eq!(hits.len(), 1, "{name}");
            assert_eq!(hits[0].0.full_name(), name);
            assert_eq!(hits[0].1.clone().into_owned(), *value);
        }
        let absent = Tag::Custom("Tag_Profile_Custom_Absent".into());
        assert!(!packed.fields().any(|(k, _)| k.is(&absent)));
        // Read from the stored column (as the store writes it, and as earlier versions wrote
        // it), a profile is the one `new` packs.
        let stored = encode_profile(&profile.fields).unwrap();
        assert_eq!(
            PackedProfile::from_stored(&stored, "u", 9, -1).unwrap(),
            packed
        );
        let json: std::collections::BTreeMap<String, ProfileValue> = profile
            .fields
            .iter()
            .map(|(k, v)| (short_tag(k).into_owned(), v.clone()))
            .collect();
        let legacy = serde_json::to_string(&json).unwrap();
        assert_eq!(
            PackedProfile::from_stored(&legacy, "u", 9, -1).unwrap(),
            packed
        );
    }
}

#[test]
fn damaged_packed_values_are_corrupt_not_misread() {
    for bad in [
        "X",
        "N",
        "N3'An",
        "N3",
        "N'abc",
        "G9*",
        "N2*",
        "V#",
        "V99999999999999999999#",
        "+99:ab1#",
        "+2ab1#",
        "N\"abc",
        "N3'Ann?",
        "{",
        "[",
    ] {
        assert!(
            matches!(decode_profile(bad, "u"), Err(StoreError::Corrupt(_))),
            "profile {bad:?}"
        );
        assert!(
            matches!(decode_items(bad, 1), Err(StoreError::Corrupt(_))),
            "items {bad:?}"
        );
        assert!(
            matches!(
                PackedProfile::from_stored(bad, "u", 1, 0),
                Err(StoreError::Corrupt(_))
            ),
            "read cache entry {bad:?}"
        );
    }
}

#[test]
fn the_frozen_enum_tables_hold_every_value_the_schema_accepts() {
    use portrait_core::schema::{StandardKind, StandardTag};
    for tag in StandardTag::ALL {
        if let StandardKind::Enum(values) = tag.kind() {
            let frozen = packed::ENUM_VALUES
                .iter()
                .find(|(t, _)| *t == tag)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("{tag:?} has no frozen table"));
            for v in values {
                assert!(frozen.contains(v), "{tag:?}: {v} missing");
            }
        }
    }
}

#[test]
fn a_typical_profile_packs_into_little_more_than_half_its_json() {
    let mut fields = Fields::new();
    for (k, v) in [
        ("Tag_Profile_IM_Nick", text("nick123456")),
        (
            "Tag_Profile_IM_Image",
            text("https://img.example.com/a/123456.png"),
        ),
        ("Tag_Profile_IM_Gender", text("Gender_Type_Male")),
        ("Tag_Profile_IM_Level", ProfileValue::Int(56)),
        ("Tag_Profile_Custom_Hobby", text("hobby12")),
    ] {
        fields.insert(k.into(), v);
    }
    let packed = encode_profile(&fields).unwrap();
    let short: BTreeMap<Cow<'_, str>, &ProfileValue> =
        fields.iter().map(|(k, v)| (short_tag(k), v)).collect();
    let json = serde_json::to_string(&short).unwrap();
    assert!(
        packed.len() * 100 <= json.len() * 56,
        "{} bytes packed vs {} as JSON: {packed}",
        packed.len(),
        json.len()
    );
}

#[test]
fn app_ids_round_trip_through_their_column_value() {
    for app in [0, 1, 1_400_000_000, i64::MAX as u64, 1 << 63, u64::MAX] {
        assert_eq!(app_from_key(app_key(app)), app);
    }
    assert_ne!(app_key(u64::MAX), app_key(u64::MAX - 1));
}
