//! Authentication of REST calls over HTTP: every URL/UserSig failure gets its own vendor code on
//! every endpoint, and only app admins may call the APIs.

use portrait_core::usersig::{mint, sig_field};
use serde_json::json;

use crate::helpers::*;

/// Calls every endpoint with `query` and asserts `code` on each (profile APIs carry
/// `ErrorDisplay`, account APIs do not).
async fn expect_everywhere(app: &TestApp, query: &str, code: u64) {
    for (api, body) in every_endpoint() {
        let r = app.post_json(&app.raw_url(api, query), &body).await;
        r.expect_code(code);
        assert_eq!(
            r.get("ErrorDisplay").is_some(),
            is_profile_api(api),
            "{api}: {r}"
        );
    }
}

/// A UserSig built by hand from `json`: a stored (uncompressed) zlib stream in the vendor's
/// base64 alphabet. Lets tests forge sigs whose content does not match their HMAC.
fn forge(json: &str) -> String {
    let data = json.as_bytes();
    let len = u16::try_from(data.len()).unwrap();
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend(len.to_le_bytes());
    z.extend((!len).to_le_bytes());
    z.extend(data);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    base64_vendor(&z)
}

/// Standard base64 with the vendor's substitutions (`+`→`*`, `/`→`-`, `=`→`_`).
fn base64_vendor(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('_');
            }
        }
    }
    out
}

fn sig_json(identifier: &str, sdkappid: u64, time: u64, expire: u64, sig: &str) -> String {
    json!({
        "TLS.ver": "2.0",
        "TLS.identifier": identifier,
        "TLS.sdkappid": sdkappid,
        "TLS.time": time,
        "TLS.expire": expire,
        "TLS.sig": sig,
    })
    .to_string()
}

#[tokio::test]
async fn the_forging_helper_builds_sigs_the_server_accepts() {
    // Guards the tests below: a hand-built sig with the right HMAC is valid, so their refusals
    // come from the tampering and not from the encoding.
    let app = spawn_app().await;
    let t = now();
    let good = forge(&sig_json(
        ADMIN,
        APP,
        t,
        3600,
        &sig_field(KEY, ADMIN, APP, t, 3600),
    ));
    let r = app
        .post_json(
            &app.raw_url(ACCOUNT_CHECK, &query(APP, ADMIN, &good)),
            &json!({"CheckItem": [{"UserID": ADMIN}]}),
        )
        .await;
    assert_eq!(r.expect_ok()["ResultItem"][0]["AccountStatus"], "Imported");
}

#[tokio::test]
async fn a_valid_admin_usersig_is_accepted_by_every_endpoint() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    for (api, body) in every_endpoint() {
        let r = app
            .post_json(
                &app.raw_url(api, &query(APP, ADMIN, &sig(APP, KEY, ADMIN))),
                &body,
            )
            .await;
        r.expect_ok();
        assert_eq!(
            r.get("ErrorDisplay").is_some(),
            is_profile_api(api),
            "{api}: {r}"
        );
    }
}

#[tokio::test]
async fn every_configured_admin_may_call_the_apis() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let admin2 = app.admin.as_identifier("admin2");
    admin2
        .portrait_set("alice", &[(NICK, json!("set by admin2"))])
        .await
        .unwrap()
        .expect_ok();
    assert_eq!(app.value("alice", NICK).await, Some(json!("set by admin2")));
}

#[tokio::test]
async fn an_expired_usersig_is_refused_with_70001() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let expired = mint(APP, KEY, ADMIN, now() - 7200, 3600);
    expect_everywhere(&app, &query(APP, ADMIN, &expired), 70001).await;
}

#[tokio::test]
async fn a_usersig_minted_earlier_and_still_within_its_validity_is_accepted() {
    let app = spawn_app().await;
    let old = mint(APP, KEY, ADMIN, now() - 7200, 86_400);
    let r = app
        .post_json(
            &app.raw_url(ACCOUNT_CHECK, &query(APP, ADMIN, &old)),
            &json!({"CheckItem": [{"UserID": "x"}]}),
        )
        .await;
    assert_eq!(
        r.expect_ok()["ResultItem"][0]["AccountStatus"],
        "NotImported"
    );
}

#[tokio::test]
async fn an_empty_or_missing_usersig_is_refused_with_70002() {
    let app = spawn_app().await;
    expect_everywhere(&app, &query(APP, ADMIN, ""), 70002).await;
    expect_everywhere(
        &app,
        &format!("sdkappid={APP}&identifier={ADMIN}&random=1&contenttype=json"),
        70002,
    )
    .await;
}

#[tokio::test]
async fn an_undecodable_usersig_is_refused_with_70003() {
    let app = spawn_app().await;
    let good = sig(APP, KEY, ADMIN);
    let t = now();
    let mac = sig_field(KEY, ADMIN, APP, t, 3600);
    let cases: Vec<(&str, String)> = vec![
        ("not base64", "@@not-a-usersig@@".into()),
        ("truncated", good[..good.len() / 2].into()),
        ("base64 of non-zlib bytes", base64_vendor(b"plain bytes, not a zlib stream")),
        ("zlib of non-JSON", forge("this is not json")),
        ("JSON that is not an object", forge("[1,2,3]")),
        ("no TLS.sig", forge(&json!({"TLS.ver": "2.0", "TLS.identifier": ADMIN, "TLS.sdkappid": APP, "TLS.time": t, "TLS.expire": 3600}).to_string())),
        ("no TLS.time", forge(&json!({"TLS.ver": "2.0", "TLS.identifier": ADMIN, "TLS.sdkappid": APP, "TLS.expire": 3600, "TLS.sig": mac}).to_string())),
        ("TLS.ver 1.0", forge(&sig_json(ADMIN, APP, t, 3600, &mac).replace("2.0", "1.0"))),
        ("TLS.sig not base64", forge(&sig_json(ADMIN, APP, t, 3600, "!!!"))),
        ("over 4 KiB", "A".repeat(5000)),
    ];
    for (what, usersig) in cases {
        let r = app
            .post_json(
                &app.raw_url(ACCOUNT_CHECK, &query(APP, ADMIN, &usersig)),
                &json!({"CheckItem": [{"UserID": "x"}]}),
            )
            .await;
        assert_eq!(r["ErrorCode"], 70003, "{what}: {r}");
    }
    expect_everywhere(&app, &query(APP, ADMIN, "garbage"), 70003).await;
}

#[tokio::test]
async fn a_usersig_signed_with_another_key_is_refused_with_70009() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let wrong_key = mint(APP, "not-the-app-key", ADMIN, now(), 3600);
    expect_everywhere(&app, &query(APP, ADMIN, &wrong_key), 70009).await;
    // OTHER_APP's key, but minted for APP's sdkappid.
    let other_key = mint(APP, OTHER_KEY, ADMIN, now(), 3600);
    expect_everywhere(&app, &query(APP, ADMIN, &other_key), 70009).await;
}

#[tokio::test]
async fn a_tampered_usersig_is_refused_with_70009() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let t = now() - 7200;
    // A genuine HMAC for a sig that expired an hour ago, with TLS.expire stretched to a day.
    let genuine = sig_field(KEY, ADMIN, APP, t, 3600);
    let stretched = forge(&sig_json(ADMIN, APP, t, 86_400, &genuine));
    expect_everywhere(&app, &query(APP, ADMIN, &stretched), 70009).await;
    // A genuine HMAC of another user's sig, relabelled for the admin.
    let users = sig_field(KEY, "alice", APP, now(), 3600);
    let relabelled = forge(&sig_json(ADMIN, APP, now(), 3600, &users));
    expect_everywhere(&app, &query(APP, ADMIN, &relabelled), 70009).await;
}

#[tokio::test]
async fn a_usersig_for_another_identifier_is_refused_with_70013() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let admin2s = sig(APP, KEY, "admin2");
    expect_everywhere(&app, &query(APP, ADMIN, &admin2s), 70013).await;
}

#[tokio::test]
async fn a_usersig_minted_for_another_app_is_refused_with_70014() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let for_other_app = sig(OTHER_APP, OTHER_KEY, ADMIN);
    expect_everywhere(&app, &query(APP, ADMIN, &for_other_app), 70014).await;
    // The same sig is fine for the app it was minted for.
    let r = app
        .post_json(
            &app.raw_url(ACCOUNT_CHECK, &query(OTHER_APP, ADMIN, &for_other_app)),
            &json!({"CheckItem": [{"UserID": ADMIN}]}),
        )
        .await;
    r.expect_ok();
}

#[tokio::test]
async fn an_unknown_sdkappid_is_refused_with_70020() {
    let app = spawn_app().await;
    let unknown = 1_400_009_999;
    expect_everywhere(
        &app,
        &query(unknown, ADMIN, &sig(unknown, KEY, ADMIN)),
        70020,
    )
    .await;
}

#[tokio::test]
async fn a_non_numeric_sdkappid_is_refused_with_60006() {
    let app = spawn_app().await;
    let s = sig(APP, KEY, ADMIN);
    for bad in ["abc", "1400000001x", "-1", "1.5", "99999999999999999999999"] {
        let q = format!("sdkappid={bad}&identifier={ADMIN}&usersig={s}&random=1&contenttype=json");
        let r = app
            .post_json(
                &app.raw_url(PORTRAIT_GET, &q),
                &json!({"To_Account": [ADMIN], "TagList": [NICK]}),
            )
            .await;
        assert_eq!(r["ErrorCode"], 60006, "sdkappid={bad}: {r}");
    }
    expect_everywhere(
        &app,
        &format!("sdkappid=abc&identifier={ADMIN}&usersig={s}"),
        60006,
    )
    .await;
}

#[tokio::test]
async fn a_missing_sdkappid_is_refused_with_60012() {
    let app = spawn_app().await;
    let s = sig(APP, KEY, ADMIN);
    expect_everywhere(
        &app,
        &format!("identifier={ADMIN}&usersig={s}&random=1&contenttype=json"),
        60012,
    )
    .await;
    expect_everywhere(
        &app,
        &format!("sdkappid=&identifier={ADMIN}&usersig={s}"),
        60012,
    )
    .await;
    // No query at all.
    let r = app
        .post_json(&format!("{}/{PORTRAIT_GET}", app.base), &json!({}))
        .await;
    r.expect_code(60012);
    // Parameter names are case-sensitive (spec §2): `SdkAppId` is not `sdkappid`.
    expect_everywhere(
        &app,
        &format!("SdkAppId={APP}&identifier={ADMIN}&usersig={s}"),
        60012,
    )
    .await;
}

#[tokio::test]
async fn a_missing_identifier_is_refused_with_60004() {
    let app = spawn_app().await;
    let s = sig(APP, KEY, ADMIN);
    expect_everywhere(
        &app,
        &format!("sdkappid={APP}&usersig={s}&random=1&contenttype=json"),
        60004,
    )
    .await;
    expect_everywhere(
        &app,
        &format!("sdkappid={APP}&identifier=&usersig={s}"),
        60004,
    )
    .await;
}

#[tokio::test]
async fn query_values_are_form_decoded_and_undecodable_ones_are_refused_with_60002() {
    let app = spawn_app().await;
    let s = sig(APP, KEY, ADMIN);
    // `%XX` escapes and a percent-encoded key decode to the same call; an unknown parameter is
    // ignored even if it does not decode.
    let escaped: String = ADMIN.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = app
        .post_json(
            &app.raw_url(
                ACCOUNT_CHECK,
                &format!("sdk%61ppid={APP}&identifier={escaped}&usersig={s}&random=1&x%FF=%FF"),
            ),
            &json!({"CheckItem": [{"UserID": "nobody"}]}),
        )
        .await;
    r.expect_ok();
    // A value that is not UTF-8 once decoded is an HTTP parse error on every endpoint.
    expect_everywhere(
        &app,
        &format!("sdkappid={APP}&identifier=%FF%FE&usersig={s}"),
        60002,
    )
    .await;
    // `+` is a space: an identifier with a space is another (non-matching) identifier.
    expect_everywhere(
        &app,
        &format!("sdkappid={APP}&identifier=admin+istrator&usersig={s}"),
        70013,
    )
    .await;
}

#[tokio::test]
async fn a_non_admin_with_a_valid_usersig_gets_40004_on_profile_apis_and_70403_on_account_apis() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let alice = app.admin.as_identifier("alice");
    for (api, body) in every_endpoint() {
        let r = alice.call(api, &body).await.unwrap();
        r.expect_code(if is_profile_api(api) { 40004 } else { 70403 });
    }
    // A never-imported identifier is refused the same way.
    let stranger = app.admin.as_identifier("stranger");
    stranger
        .portrait_get(&["alice"], &[NICK])
        .await
        .unwrap()
        .expect_code(40004);
    stranger
        .account_check(&["alice"])
        .await
        .unwrap()
        .expect_code(70403);
    // The admin of OTHER_APP is not an admin of APP (its sig does not even verify there).
    let other_admin_here = app
        .post_json(
            &app.raw_url(
                PORTRAIT_GET,
                &query(APP, ADMIN, &sig(APP, OTHER_KEY, ADMIN)),
            ),
            &json!({}),
        )
        .await;
    other_admin_here.expect_code(70009);
}

#[tokio::test]
async fn refused_calls_change_nothing() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.set("alice", &[(NICK, json!("before"))])
        .await
        .expect_ok();
    let set = json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": "after"}]});
    let bad_queries = [
        query(APP, ADMIN, &mint(APP, KEY, ADMIN, now() - 7200, 60)),
        query(APP, ADMIN, "garbage"),
        query(APP, ADMIN, &mint(APP, "wrong", ADMIN, now(), 60)),
        query(APP, "alice", &sig(APP, KEY, "alice")),
    ];
    for q in &bad_queries {
        let r = app.post_json(&app.raw_url(PORTRAIT_SET, q), &set).await;
        assert_eq!(r["ActionStatus"], "FAIL", "{r}");
    }
    let import = json!({"UserID": "mallory"});
    let r = app
        .post_json(
            &app.raw_url(
                ACCOUNT_IMPORT,
                &query(APP, "alice", &sig(APP, KEY, "alice")),
            ),
            &import,
        )
        .await;
    r.expect_code(70403);
    let delete = json!({"DeleteItem": [{"UserID": "alice"}]});
    let r = app
        .post_json(
            &app.raw_url(ACCOUNT_DELETE, &query(APP, ADMIN, "garbage")),
            &delete,
        )
        .await;
    r.expect_code(70003);

    assert_eq!(app.value("alice", NICK).await, Some(json!("before")));
    assert_eq!(
        app.statuses(&["alice", "mallory"]).await,
        ["Imported", "NotImported"]
    );
}

#[tokio::test]
async fn auth_is_checked_before_the_body_is_parsed() {
    let app = spawn_app().await;
    // A bad body with a bad sig reports the sig; with a good sig, the body.
    let r = app
        .send(
            reqwest::Method::POST,
            &app.raw_url(PORTRAIT_SET, &query(APP, ADMIN, "garbage")),
            None,
            "{not json",
        )
        .await;
    r.expect_code(70003);
    let r = app
        .send(
            reqwest::Method::POST,
            &app.url(PORTRAIT_SET),
            None,
            "{not json",
        )
        .await;
    r.expect_code(60003);
}
