//! A change as users see it: the `profile` frame (docs/client-api.md) with the tags users may
//! not read dropped and the operator shown as users may see it, serialized once per change for
//! all the connections that get it. No connection or feed state here.

use std::sync::Arc;

use portrait_core::schema::{Actor, Schema};
use portrait_core::wire::ADMIN_OPERATOR;
use portrait_core::ws::{ChangeKind, ProfileEvent, ServerFrame};
use portrait_store::Change;

/// One change, as pushed to users.
#[derive(Debug)]
pub struct Event {
    /// Whose profile changed.
    pub account: String,
    /// The change's version.
    pub version: u64,
    /// The frame, with `cursor` = `version` (what a live event carries).
    pub frame: Arc<str>,
    change: Change,
}

impl Event {
    /// Builds the event of `change` as users may see it (unreadable tags dropped).
    pub fn new(change: Change, schema: &Schema) -> Event {
        let frame = frame(&change, schema, change.version).into();
        Event {
            account: change.user.clone(),
            version: change.version,
            frame,
            change,
        }
    }

    /// The frame with another `cursor` (catch-up of a newly subscribed account).
    pub fn frame_with_cursor(&self, schema: &Schema, cursor: u64) -> String {
        frame(&self.change, schema, cursor)
    }
}

/// The `profile` frame of `c` (docs/client-api.md), with unreadable tags dropped.
fn frame(c: &Change, schema: &Schema, cursor: u64) -> String {
    let items = c
        .items
        .iter()
        .filter(|(tag, _)| {
            schema
                .resolve(tag)
                .is_ok_and(|t| schema.can_read(&t, Actor::User))
        })
        .map(|(tag, value)| portrait_core::wire::ProfileItem {
            tag: tag.clone(),
            value: value.to_json(),
        })
        .collect();
    ServerFrame::Profile(ProfileEvent {
        account: c.user.clone(),
        version: c.version,
        kind: wire_kind(c.kind),
        operator: shown_operator(c).to_owned(),
        time_ms: c.at_ms,
        items,
        cursor,
    })
    .to_json()
}

/// The store's change kind as the protocol names it.
fn wire_kind(kind: portrait_store::ChangeKind) -> ChangeKind {
    match kind {
        portrait_store::ChangeKind::Import => ChangeKind::Import,
        portrait_store::ChangeKind::Set => ChangeKind::Set,
        portrait_store::ChangeKind::Delete => ChangeKind::Delete,
    }
}

/// The `operator` of `c` as users see it: the UserID when the user changed their own profile
/// (users can change no other), otherwise [`ADMIN_OPERATOR`], never an admin's identifier.
fn shown_operator(c: &Change) -> &str {
    if c.operator == c.user {
        &c.operator
    } else {
        ADMIN_OPERATOR
    }
}
