//! The `portrait` binary end to end: zero-config start, restart reuse, graceful shutdown, and the
//! `usersig` and `config example` commands.

mod common;

use std::process::Command;

use portrait_client::AdminClient;

fn portrait(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portrait"))
        .args(args)
        .output()
        .expect("run portrait")
}

fn banner_value(banner: &[String], label: &str) -> String {
    banner
        .iter()
        .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("banner has no {label:?} line: {banner:#?}"))
}

#[tokio::test]
async fn first_start_without_config_creates_a_dev_app_that_a_restart_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = common::start(dir.path(), None);
    assert!(
        node.banner
            .iter()
            .any(|l| l.contains("created the development app")),
        "{:#?}",
        node.banner
    );
    let sdkappid: u64 = banner_value(&node.banner, "sdkappid").parse().unwrap();
    let admin = banner_value(&node.banner, "admin");
    let key = banner_value(&node.banner, "secret key");
    assert!(
        node.banner
            .iter()
            .any(|l| l.starts_with("curl -s 'http://")),
        "a ready-to-paste curl line"
    );

    let client = AdminClient::new(&node.base, sdkappid, &admin, &key);
    assert_eq!(
        client
            .account_import("alice", Some("Alice"), None)
            .await
            .unwrap()
            .code(),
        0
    );
    let r = client
        .portrait_get(&["alice"], &["Tag_Profile_IM_Nick"])
        .await
        .unwrap();
    assert_eq!(
        r.0["UserProfileItem"][0]["ProfileItem"][0]["Value"],
        "Alice"
    );
    node.kill9();

    let node = common::start(dir.path(), None);
    assert!(
        node.banner
            .iter()
            .any(|l| l.contains("reusing the development app")),
        "{:#?}",
        node.banner
    );
    assert_eq!(
        banner_value(&node.banner, "sdkappid")
            .parse::<u64>()
            .unwrap(),
        sdkappid
    );
    assert_eq!(banner_value(&node.banner, "secret key"), key);
    let client = AdminClient::new(&node.base, sdkappid, &admin, &key);
    let r = client
        .portrait_get(&["alice"], &["Tag_Profile_IM_Nick"])
        .await
        .unwrap();
    assert_eq!(
        r.0["UserProfileItem"][0]["ProfileItem"][0]["Value"], "Alice",
        "data survives the restart"
    );
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = common::start(dir.path(), Some(&common::apps_env()));
    let pid = node.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || node.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

#[test]
fn usersig_command_mints_a_sig_the_server_code_verifies() {
    let out = portrait(&[
        "usersig",
        "--sdkappid",
        "1400000000",
        "--key",
        "k3y",
        "--user",
        "bob",
        "--expire",
        "600",
    ]);
    assert!(out.status.success());
    let sig = String::from_utf8(out.stdout).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let v = portrait_core::usersig::verify(sig.trim(), 1_400_000_000, "bob", "k3y", now).unwrap();
    assert_eq!(v.expire, 600);
    let bad = portrait(&["usersig", "--sdkappid", "1", "--key", "k", "--user", ""]);
    assert!(!bad.status.success(), "an empty user is refused");
}

#[test]
fn config_example_prints_the_commented_example() {
    let out = portrait(&["config", "example"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[[apps]]") && text.contains("Tag_Profile_Custom_"));
}

#[test]
fn a_bad_config_value_is_reported_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[server]\nlisten = 42\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portrait"))
        .args(["serve", "--config"])
        .arg(dir.path().join("bad.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("listen"), "{err}");
}
