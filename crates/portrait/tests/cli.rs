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

/// Starts `portrait serve` (one configured app, so no banner) with standard output redirected to
/// a file, as a service manager writing to a log file or the journal does; `envs` are added to
/// its environment. Answers one `/healthz` call, stops it with SIGTERM and returns the file.
async fn serve_logging_to_a_file(envs: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("portrait.log");
    let mut cmd = common::serve_command(dir.path());
    cmd.env("PORTRAIT_APPS", common::apps_env())
        // Request spans and their debug events, as well as the start-up info line.
        .env("RUST_LOG", "portrait=debug,portrait_server=debug")
        .env_remove("NO_COLOR")
        .stdout(std::fs::File::create(&log).unwrap());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let base = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|l| l.strip_prefix("portrait: listening on "))
        {
            break url.trim().to_owned();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "portrait exited before listening: {text}"
        );
        assert!(std::time::Instant::now() < deadline, "no listening line");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let resp = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::read(&log).unwrap()
}

#[tokio::test]
async fn log_lines_written_to_a_file_carry_no_ansi_escape_codes() {
    for envs in [vec![], vec![("PORTRAIT_LOG__FORMAT", "text")]] {
        let out = serve_logging_to_a_file(&envs).await;
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains('\x1b'),
            "{envs:?}: an ESC byte in a log written to a file:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("INFO") && l.contains("portrait listening")),
            "{envs:?}: the start-up line is logged as text:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("DEBUG") && l.contains("request answered")),
            "{envs:?}: the request is logged:\n{text}"
        );
    }
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_per_line() {
    let out = serve_logging_to_a_file(&[("PORTRAIT_LOG__FORMAT", "json")]).await;
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains('\x1b'), "{text}");
    let mut logs = Vec::new();
    for line in text.lines() {
        // The one plain line for people and scripts.
        if line.starts_with("portrait: listening on ") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{text}"));
        for field in ["timestamp", "level", "message", "target"] {
            assert!(v[field].is_string(), "{field} in {line}");
        }
        logs.push(v);
    }
    let start = logs
        .iter()
        .find(|v| v["message"] == "portrait listening")
        .unwrap_or_else(|| panic!("no start-up line:\n{text}"));
    assert_eq!(start["level"], "INFO");
    assert!(
        start["addr"]
            .as_str()
            .is_some_and(|a| a.contains("127.0.0.1")),
        "the event's fields are top-level: {start}"
    );
    let answered = logs
        .iter()
        .find(|v| v["message"] == "request answered")
        .unwrap_or_else(|| panic!("no request line:\n{text}"));
    assert_eq!(answered["level"], "DEBUG");
    assert_eq!(answered["span"]["path"], "/healthz", "{answered}");
    assert_eq!(answered["span"]["method"], "GET", "{answered}");
    assert!(
        answered["span"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{answered}"
    );
}

#[test]
fn an_unknown_log_format_is_refused_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::serve_command(dir.path())
        .env("PORTRAIT_LOG__FORMAT", "xml")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lower = err.to_lowercase();
    assert!(
        lower.contains("log.format") && err.contains("xml") && err.contains("PORTRAIT_"),
        "{err}"
    );
}
