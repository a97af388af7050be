//! Durability: every write acknowledged with ErrorCode 0 survives `kill -9` of the server.
//!
//! Writers hammer `portrait_set` on the real binary; the process is SIGKILLed mid-load; a new
//! process on the same data directory must return, for every user, the last acknowledged value
//! or the one write that was in flight when the process died — never an older one.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use portrait_client::AdminClient;
use serde_json::json;

/// user -> (last acknowledged seq, seq in flight)
type Progress = HashMap<String, (Option<u64>, Option<u64>)>;

const WRITERS: usize = 4;
const USERS_PER_WRITER: usize = 5;
/// Kill after this many acknowledged writes (no timing involved).
const ACKS_BEFORE_KILL: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_mid_load() {
    let dir = tempfile::tempdir().unwrap();
    let apps = common::apps_env();
    let mut node = common::start(dir.path(), Some(&apps));
    let admin = AdminClient::new(&node.base, common::APP, "administrator", common::KEY);

    let users: Vec<String> = (0..WRITERS * USERS_PER_WRITER)
        .map(|i| format!("user{i}"))
        .collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    assert_eq!(admin.multiaccount_import(&refs).await.unwrap().code(), 0);

    // user -> (last acknowledged seq, seq in flight)
    let state: Arc<Mutex<Progress>> = Arc::default();
    let acks = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (admin, state, acks, notify) =
            (admin.clone(), state.clone(), acks.clone(), notify.clone());
        let mine: Vec<String> = users[w * USERS_PER_WRITER..(w + 1) * USERS_PER_WRITER].to_vec();
        tasks.push(tokio::spawn(async move {
            for seq in 1u64.. {
                let user = &mine[seq as usize % mine.len()];
                state.lock().unwrap().entry(user.clone()).or_default().1 = Some(seq);
                let r = admin
                    .portrait_set(
                        user,
                        &[
                            ("Tag_Profile_IM_Nick", json!(format!("v{seq}"))),
                            ("Tag_Profile_IM_Level", json!(seq)),
                        ],
                    )
                    .await;
                match r {
                    Ok(r) if r.code() == 0 => {
                        let mut s = state.lock().unwrap();
                        let e = s.get_mut(user).unwrap();
                        *e = (Some(seq), None);
                        if acks.fetch_add(1, Ordering::SeqCst) + 1 == ACKS_BEFORE_KILL {
                            notify.notify_one();
                        }
                    }
                    Ok(r) => panic!("unexpected refusal before the kill: {:?}", r.0),
                    Err(_) => return, // the server died: this write is unacknowledged
                }
            }
        }));
    }
    notify.notified().await;
    node.kill9();
    for t in tasks {
        t.await.unwrap();
    }

    let node = common::start(dir.path(), Some(&apps));
    let admin = AdminClient::new(&node.base, common::APP, "administrator", common::KEY);
    let r = admin
        .portrait_get(&refs, &["Tag_Profile_IM_Nick", "Tag_Profile_IM_Level"])
        .await
        .unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
    let state = state.lock().unwrap();
    let mut checked = 0;
    for item in r.0["UserProfileItem"].as_array().unwrap() {
        let user = item["To_Account"].as_str().unwrap();
        let nick = item["ProfileItem"][0]["Value"].as_str().unwrap();
        let level = item["ProfileItem"][1]["Value"].as_u64().unwrap();
        let Some(&(acked, in_flight)) = state.get(user) else {
            continue;
        };
        let stored = nick.strip_prefix('v').map(|n| n.parse::<u64>().unwrap());
        assert_eq!(
            stored,
            if level == 0 { None } else { Some(level) },
            "{user}: nick and level were written in one set and must agree"
        );
        if let Some(acked) = acked {
            checked += 1;
            assert!(
                stored == Some(acked) || (in_flight.is_some() && stored == in_flight),
                "{user}: acknowledged v{acked} (in flight {in_flight:?}) but found {nick:?} after kill -9"
            );
        }
    }
    assert!(
        checked >= WRITERS,
        "at least one acknowledged user per writer was checked"
    );
    assert!(acks.load(Ordering::SeqCst) >= ACKS_BEFORE_KILL);
}
