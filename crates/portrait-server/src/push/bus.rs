//! What nodes sharing a store tell each other over NATS (`push.nats_url`): wake-ups after a
//! write (`<nats_subject>.<sdkappid>`), kicks (`<nats_subject>.kick.<sdkappid>`) and wake-ups
//! after an app record changed (`<nats_subject>.apps`, `crate::live`). It carries nothing
//! else: a lost message only delays until the next head poll (`super::poll`).

use std::sync::Arc;

use portrait_store::AppId;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hub::Feeds;
use crate::settings::PushSettings;

/// What nodes tell each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum BusMsg {
    /// The app's change log grew (`<prefix>.<app>`).
    Wake(AppId),
    /// A user was kicked (`<prefix>.kick.<app>`, payload `<not_before> <user>`).
    Kick(AppId, String, u64),
    /// App records changed (`<prefix>.apps`).
    Apps,
}

/// The last token of the app-record wake-up's subject.
const APPS: &str = "apps";

/// Connects to NATS (in the background if it is down) and starts the publisher and subscriber
/// of wake-ups and kicks. Returns the publisher's queue.
pub(super) async fn start_bus(
    settings: &PushSettings,
    feeds: Feeds,
    apps_changed: Arc<Notify>,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Option<mpsc::UnboundedSender<BusMsg>> {
    if settings.nats_url.is_empty() {
        return None;
    }
    let url: Vec<String> = settings
        .nats_url
        .split(',')
        .map(portrait_store::redact_url)
        .collect();
    let url = url.join(",");
    let servers = match crate::settings::nats::servers(&settings.nats_url) {
        Ok(servers) if servers.is_empty() => return None,
        Ok(servers) => servers,
        Err(e) => {
            tracing::error!(error = %e, "push bus: bad NATS settings; running without it");
            return None;
        }
    };
    let client = match async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => {
                    tracing::info!("push bus: connected to NATS");
                    metrics::gauge!("portrait_bus_connected").set(1.0);
                }
                async_nats::Event::Disconnected => {
                    tracing::warn!("push bus: disconnected from NATS; changes from other nodes arrive by polling until it is back");
                    metrics::gauge!("portrait_bus_connected").set(0.0);
                }
                other => tracing::debug!(event = %other, "push bus"),
            }
        })
        .connect(servers)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(url = %url, error = %e, "push bus: bad NATS settings; running without it");
            return None;
        }
    };
    let node: u64 = rand::random();
    let prefix = settings.nats_subject.clone();
    // Publisher: coalesces bursts into one wake-up per app.
    let (tx, mut rx) = mpsc::unbounded_channel::<BusMsg>();
    let publisher = client.clone();
    let subject = prefix.clone();
    let stop_pub = stop.clone();
    tasks.spawn(async move {
        let payload = bytes::Bytes::from(node.to_string());
        loop {
            let first = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => return },
                () = stop_pub.cancelled() => return,
            };
            let mut msgs = vec![first];
            while let Ok(m) = rx.try_recv() {
                if !msgs.contains(&m) {
                    msgs.push(m);
                }
            }
            for m in msgs {
                let sent = match m {
                    BusMsg::Wake(app) => {
                        publisher
                            .publish(format!("{subject}.{app}"), payload.clone())
                            .await
                    }
                    BusMsg::Apps => {
                        publisher
                            .publish(format!("{subject}.{APPS}"), payload.clone())
                            .await
                    }
                    BusMsg::Kick(app, user, nb) => {
                        publisher
                            .publish(
                                format!("{subject}.kick.{app}"),
                                bytes::Bytes::from(format!("{nb} {user}")),
                            )
                            .await
                    }
                };
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "push bus: publish failed");
                }
                metrics::counter!("portrait_bus_published_total").increment(1);
            }
        }
    });
    // Subscriber: wakes the feed of the app named by the subject; applies kicks.
    let subscriber = client.clone();
    tasks.spawn(async move {
        use futures_util::StreamExt;
        let subs = match (
            subscriber.subscribe(format!("{prefix}.*")).await,
            subscriber.subscribe(format!("{prefix}.kick.*")).await,
        ) {
            (Ok(a), Ok(b)) => futures_util::stream::select(a, b),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "push bus: cannot subscribe; changes from other nodes arrive by polling");
                return;
            }
        };
        let mut sub = subs;
        let own = node.to_string();
        loop {
            let msg = tokio::select! {
                m = sub.next() => match m { Some(m) => m, None => return },
                () = stop.cancelled() => return,
            };
            let last = msg.subject.as_str().rsplit('.').next();
            if last == Some(APPS) {
                metrics::counter!("portrait_bus_received_total").increment(1);
                apps_changed.notify_one();
                continue;
            }
            let app = last.and_then(|a| a.parse::<AppId>().ok());
            let Some(feed) = app.and_then(|a| crate::sync::read(&feeds).get(&a).cloned()) else {
                continue;
            };
            metrics::counter!("portrait_bus_received_total").increment(1);
            if msg.subject.as_str().starts_with(&format!("{prefix}.kick.")) {
                let text = String::from_utf8_lossy(&msg.payload);
                if let Some((nb, user)) = text.split_once(' ') {
                    if let Ok(nb) = nb.parse() {
                        feed.apply_kick(user, nb);
                    }
                }
            } else if msg.payload.as_ref() != own.as_bytes() {
                feed.wake(); // not our own write: that one woke the feed directly
            }
        }
    });
    Some(tx)
}
