//! `POST /admin/v1/apps/{sdkappid}/move`: an app's data moved to another shard while it is
//! served, cluster-wide (docs/deployment.md, "Shards"). The copy and catch-up are the store's
//! (`portrait_store::sharded`); what is here is the pause across nodes:
//!
//! 1. this node holds the app's writes, then *announces* the move: a new app record with
//!    `moving` set, applied here and published to the other nodes (NATS wake-up, or their
//!    `[operator] poll_ms` poll);
//! 2. each node that applies it holds the app's writes too and acknowledges on the app's shard
//!    (`Sharded::ack_pause`); this node waits for every member (`coherence`, or its bystander
//!    without NATS) to have done so, at most [`ACK_WAIT`] (a node without a member id waits
//!    two polls instead);
//! 3. the last catch-up and the verification run; then a record with the new `shard` and no
//!    `moving` is written and applied, and every node routes the app there and lets its writes
//!    go on. On any failure after 1, a record without `moving` (and the old shard) ends the
//!    pause instead.
//!
//! The move runs in a task of its own and always reaches one of those two ends: what ends the
//! request (the caller hanging up, a deadline) must not stop it halfway, which would leave
//! every node holding the app's writes, or this node writing the old shard after the others
//! switched. Its request deadline is [`MOVE_DEADLINE`], not `[server] request_timeout_ms`
//! (a move under load takes longer than 3 s); it answers within [`MOVE_ANSWER_WITHIN`], else
//! with `504 move_unfinished` while it goes on.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use portrait_core::operator::{AppMove, AppMoved, AppSource};
use portrait_store::StoreError;

use super::apps::{applied, put};
use super::{parse_sdkappid, Body};
use crate::error::OpError;
use crate::settings::AppConfig;
use crate::state::AppState;

/// How long the mover waits for every node to hold the app's writes before it gives up (the
/// move is then abandoned, the app stays where it was).
const ACK_WAIT: Duration = Duration::from_secs(3);

/// A member name no node has: asking for the members with it (and no lease) lists them.
const PROBE: &str = "portrait-move-probe";

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v1/apps/{sdkappid}/move", post(move_app))
}

/// The request deadline of a move ([`crate::edge`]), instead of `[server] request_timeout_ms`
/// when that is shorter: a move takes seconds (its catch-up may run up to a minute, its pause
/// waits up to [`ACK_WAIT`] for the other nodes), and it answers by itself within
/// [`MOVE_ANSWER_WITHIN`].
pub const MOVE_DEADLINE: Duration = Duration::from_secs(130);

/// How long the answer waits for the move; past it the answer is `504 move_unfinished` and the
/// move goes on by itself (it switches, or ends its pause and leaves the app where it was).
const MOVE_ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// The request deadline of `path` when it is longer than the ordinary one: a move's.
pub fn deadline_of(method: &axum::http::Method, path: &str) -> Option<Duration> {
    let rest = path
        .strip_prefix("/admin/v1/apps/")?
        .strip_suffix("/move")?;
    (method == axum::http::Method::POST && !rest.is_empty() && !rest.contains('/'))
        .then_some(MOVE_DEADLINE)
}

/// `POST /admin/v1/apps/{sdkappid}/move`.
async fn move_app(
    State(state): State<AppState>,
    Path(sdkappid): Path<String>,
    Body(req): Body<AppMove>,
) -> Result<Json<AppMoved>, OpError> {
    let id = parse_sdkappid(&sdkappid)?;
    let Some(shards) = state.shards().cloned() else {
        return Err(OpError::Invalid(
            "this node has no [store] shards; there is nowhere to move an app".into(),
        ));
    };
    if !shards.has(&req.shard) {
        return Err(OpError::Invalid(format!(
            "no shard {:?}; the shards are {}",
            req.shard,
            shards.names().join(", ")
        )));
    }
    // In a task of its own, so that the move reaches its end whatever ends the request.
    let to = req.shard.clone();
    let task = tokio::spawn(run_move(state, shards, id, req));
    match tokio::time::timeout(MOVE_ANSWER_WITHIN, task).await {
        Ok(Ok(answer)) => answer.map(Json),
        Ok(Err(e)) => Err(OpError::Internal(anyhow::anyhow!(
            "the move task failed: {e}"
        ))),
        Err(_) => Err(OpError::MoveUnfinished(format!(
            "the move of app {id} to shard {to:?} did not finish within {MOVE_ANSWER_WITHIN:?}; \
             it goes on and either switches or leaves the app where it was: \
             GET /admin/v1/apps/{id} shows its shard"
        ))),
    }
}

/// The move itself (see the module docs), run to its end whatever happens to the request.
async fn run_move(
    state: AppState,
    shards: std::sync::Arc<portrait_store::sharded::Sharded>,
    id: u64,
    req: AppMove,
) -> Result<AppMoved, OpError> {
    let _one = state.live().changing().await;
    state.sync_apps().await.map_err(OpError::from_anyhow)?;
    let app = state.live().get(id).ok_or(OpError::AppNotFound(id))?;
    let from = shards.shard_of(id);
    // The revision of the announcing record, once written (the last record's `If-Match`).
    let announced: Mutex<Option<u64>> = Mutex::new(None);
    let started = shards
        .begin_move(id, &req.shard, || {
            announce(
                &state,
                &app.config,
                &req.shard,
                app_expected(&app),
                &announced,
            )
        })
        .await;
    let announced = *crate::sync::lock(&announced);
    let moving = match started {
        Ok(m) => m,
        Err(e) => {
            end_announcement(&state, &app.config, announced).await;
            return Err(match e {
                StoreError::Unavailable(_) => OpError::Store(e),
                e => OpError::MoveRefused(format!("app {id} stays on shard {from:?}: {e}")),
            });
        }
    };
    let mut cfg = app.config.clone();
    cfg.shard = Some(req.shard.clone());
    cfg.moving = None;
    let expected = announced.or_else(|| app_expected(&app));
    let revision = match put(&state, &cfg, expected).await {
        Ok(r) => r,
        Err(e) => {
            drop(moving);
            end_announcement(&state, &app.config, announced).await;
            return Err(match e {
                OpError::Store(StoreError::VersionConflict { .. }) => OpError::MoveRefused(format!(
                    "app {id} was changed on another node during the move; it stays on {from:?}, retry"
                )),
                e => e,
            });
        }
    };
    let r = moving.switch();
    tracing::info!(sdkappid = id, from = %r.from, to = %r.to, version = r.version, paused_ms = r.paused_ms, took_ms = r.took_ms, "app moved");
    applied(&state, cfg, revision).await?;
    Ok(AppMoved {
        sdkappid: id,
        from: r.from,
        to: r.to,
        copied_accounts: r.copied_accounts as u64,
        caught_up_changes: r.caught_up_changes as u64,
        version: r.version,
        verified_accounts: r.verified_accounts as u64,
        paused_ms: r.paused_ms,
        took_ms: r.took_ms,
    })
}

/// The `If-Match` of the app's next record (none for an app only in the file).
fn app_expected(app: &crate::live::LiveApp) -> Option<u64> {
    (app.source == AppSource::Store).then_some(app.revision)
}

/// Step 1 and 2: writes and applies the record with `moving`, tells the other nodes, and waits
/// until each holds the app's writes.
async fn announce(
    state: &AppState,
    cfg: &AppConfig,
    to: &str,
    expected: Option<u64>,
    announced: &Mutex<Option<u64>>,
) -> portrait_store::Result<()> {
    let id = cfg.sdkappid;
    let mut cfg = cfg.clone();
    cfg.moving = Some(to.to_owned());
    let revision = put(state, &cfg, expected).await.map_err(store_error)?;
    *crate::sync::lock(announced) = Some(revision);
    applied(state, cfg, revision).await.map_err(store_error)?;
    let shards = state.shards().expect("a move needs shards");
    let deadline = Instant::now() + ACK_WAIT;
    let Some(me) = state.node() else {
        // No member id (not expected on PostgreSQL): give every node two polls to see it.
        tokio::time::sleep(Duration::from_millis(2 * state.live().poll_ms())).await;
        return Ok(());
    };
    let members = state.store().members(PROBE, 0).await?;
    for node in members.iter().filter(|n| n.as_str() != me) {
        loop {
            if shards.pause_acked(id, node).await? >= Some(revision) {
                break;
            }
            if Instant::now() > deadline {
                return Err(StoreError::Conflict {
                    what: format!("node {node} did not hold the app's writes within {ACK_WAIT:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(())
}

/// Ends an announced move that did not happen: a record without `moving`, on the old shard
/// (from the app's latest record, should another node have changed it meanwhile).
async fn end_announcement(state: &AppState, cfg: &AppConfig, announced: Option<u64>) {
    let Some(mut expected) = announced else {
        return;
    };
    let id = cfg.sdkappid;
    let mut cfg = cfg.clone();
    cfg.moving = None;
    for _ in 0..5 {
        match put(state, &cfg, Some(expected)).await {
            Ok(r) => {
                if let Err(e) = applied(state, cfg, r).await {
                    tracing::error!(sdkappid = id, error = %e, "ending an abandoned move: applying its record");
                }
                return;
            }
            Err(OpError::Store(StoreError::VersionConflict { .. })) => {
                if let Err(e) = state.sync_apps().await {
                    tracing::warn!(sdkappid = id, error = %format!("{e:#}"), "ending an abandoned move: reading records");
                }
                if let Some(live) = state.live().get(id) {
                    let shard = cfg.shard.take();
                    cfg = live.config.clone();
                    cfg.shard = shard;
                    cfg.moving = None;
                    expected = live.revision;
                }
            }
            Err(e) => {
                tracing::error!(sdkappid = id, error = %e, "ending an abandoned move: writing its record");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tracing::error!(
        sdkappid = id,
        "an abandoned move's pause could not be ended; PATCH the app to end it"
    );
}

fn store_error(e: OpError) -> StoreError {
    match e {
        OpError::Store(e) => e,
        e => StoreError::Config(e.to_string()),
    }
}
