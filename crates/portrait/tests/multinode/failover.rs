//! A node dies; its subscribers move to another node and catch up by cursor, exactly, also
//! under continuous writes (uses the cluster harness of `multinode.rs`).

use super::*;

/// Through which node, and as whom, a write is made.
enum Via {
    /// `portrait_set` by the admin through node N.
    Admin(usize),
    /// `update_my_profile` by the account itself through node N.
    Own(usize),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_of_a_killed_node_catches_up_exactly_on_another_node() {
    let mut c = Cluster::start(3, Options::default()).await;
    ok(
        c.admin(0)
            .multiaccount_import(&["alice", "bob", "dave", "wendy"])
            .await,
        "multiaccount_import via node 0",
    );
    let subscribed = ["alice", "bob"];
    let mut sub = Subscriber::connect(&c.user(2, "wendy"), None, &subscribed).await;

    // Before the kill: one write through each surviving node, pushed through node 2.
    ok(
        c.admin(0)
            .portrait_set("alice", &[(NICK, json!("before-1"))])
            .await,
        "set",
    );
    ok(
        c.user(1, "bob")
            .update_my_profile(&[(NICK, json!("before-2"))], None)
            .await,
        "update",
    );
    let before = sub.events(2).await;
    assert_eq!(
        before
            .iter()
            .map(|e| (e.account.as_str(), e.item(NICK).unwrap().as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("alice", "before-1"), ("bob", "before-2")]
    );
    let cursor = sub.cursor;
    assert_eq!(cursor, before[1].version);

    c.kill(2);
    sub.assert_gone().await;

    // Meanwhile, through the surviving nodes: changes of the followed accounts, of wendy's own
    // account (always subscribed) and of an account she does not follow.
    let meanwhile = [
        (Via::Admin(0), "alice", "meanwhile-1", true),
        (Via::Own(1), "bob", "meanwhile-2", true),
        (Via::Admin(1), "dave", "not-followed", false),
        (Via::Admin(0), "wendy", "meanwhile-3", true),
        (Via::Own(0), "alice", "meanwhile-4", true),
        (Via::Admin(1), "bob", "meanwhile-5", true),
    ];
    let mut expected = Vec::new();
    for (via, account, nick, followed) in meanwhile {
        let item = [(NICK, json!(nick))];
        match via {
            Via::Admin(n) => ok(c.admin(n).portrait_set(account, &item).await, "set"),
            Via::Own(n) => ok(
                c.user(n, account).update_my_profile(&item, None).await,
                "update",
            ),
        };
        if followed {
            expected.push((account.to_owned(), nick.to_owned()));
        }
    }

    // Reconnect to node 0 with the last cursor: exactly the changes made meanwhile, in order.
    let mut sub = Subscriber::connect(&c.user(0, "wendy"), Some(cursor), &subscribed).await;
    let caught = sub.until_synced().await;
    assert_eq!(
        caught
            .iter()
            .map(|e| (
                e.account.clone(),
                e.item(NICK).unwrap().as_str().unwrap().to_owned()
            ))
            .collect::<Vec<_>>(),
        expected,
        "the catch-up on node 0 from cursor {cursor}"
    );
    assert!(caught.iter().all(|e| e.version > cursor && e.kind == "set"));
    assert!(sub.cursor >= caught.last().unwrap().version);

    // Then live again, on the new node, for a write through another node.
    ok(
        c.admin(1)
            .portrait_set("bob", &[(NICK, json!("after-1"))])
            .await,
        "set",
    );
    let after = sub.events(1).await;
    assert_eq!(key_of(&after[0]).1, "after-1");
    sub.assert_quiet().await;

    let history: Vec<ProfileEvent> = before.into_iter().chain(caught).chain(after).collect();
    assert_strictly_increasing(&history, "wendy's events over both connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_continuous_writes_a_subscriber_moved_off_a_killed_node_misses_nothing_and_gets_nothing_twice(
) {
    let mut c = Cluster::start(3, Options::default()).await;
    let followed = ["alice", "bob"];
    ok(
        c.admin(0)
            .multiaccount_import(&["alice", "bob", "wendy"])
            .await,
        "multiaccount_import via node 0",
    );
    let mut sub = Subscriber::connect(&c.user(2, "wendy"), None, &followed).await;

    // Writers through nodes 0 (admin) and 1 (the users themselves) until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let written: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let writers: Vec<_> = (0..2)
        .map(|node| {
            let (admin, stop, written) = (c.admin(node), stop.clone(), written.clone());
            let users: Vec<UserClient> = followed.iter().map(|u| c.user(node, u)).collect();
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let account = followed[n % 2];
                    let nick = format!("via{node}-{n}");
                    let operator = if node == 0 {
                        ok(
                            admin.portrait_set(account, &[(NICK, json!(nick))]).await,
                            "portrait_set",
                        );
                        ADMIN_OPERATOR
                    } else {
                        ok(
                            users[n % 2]
                                .update_my_profile(&[(NICK, json!(nick))], None)
                                .await,
                            "update_my_profile",
                        );
                        account
                    };
                    written
                        .lock()
                        .unwrap()
                        .push((account.to_owned(), nick, operator.to_owned()));
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();

    let mut received = sub.events(20).await;
    c.kill(2);
    // Frames already on the wire before the kill still count.
    loop {
        match tokio::time::timeout(PUSH_WAIT, sub.socket.next()).await {
            Ok(Ok(Some(Incoming::Frame(Frame::Profile(ev))))) => {
                sub.cursor = sub.cursor.max(ev.cursor);
                received.push(ev);
            }
            Ok(Ok(None | Some(Incoming::Closed(..))) | Err(_)) => break,
            other => panic!("node 2's connection after the kill: {other:?}"),
        }
    }
    let cursor = sub.cursor;
    assert_eq!(cursor, received.last().unwrap().version);

    let mut sub = Subscriber::connect(&c.user(1, "wendy"), Some(cursor), &followed).await;
    received.extend(sub.until_synced().await);
    received.extend(sub.events(20).await); // live on node 1, writes still going on
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let written = std::mem::take(&mut *written.lock().unwrap());
    let missing = written.len().saturating_sub(received.len());
    received.extend(sub.events(missing).await);
    sub.assert_quiet().await;

    assert_strictly_increasing(&received, "wendy's events over both connections");
    assert_eq!(
        sorted(received.iter().map(key_of).collect()),
        sorted(written),
        "every acknowledged write exactly once, across the kill and the reconnect (cursor {cursor})"
    );
}
