//! Generates `sdk/js/src/wire.ts` from the types of [`super`] (with `ts-rs`, a dev-dependency,
//! so normal builds do not carry it) and checks that the checked-in file is what they generate.
//! `PORTRAIT_BLESS=1 cargo test -p portrait-core ws::` rewrites the file.

use std::fmt::Write as _;
use std::path::PathBuf;

use ts_rs::{Config, TS};

use super::{ChangeKind, ClientOp, CloseCode, OpName, ProfileEvent, ServerFrame, WS_ERROR_CODES};
use crate::wire::ProfileItem;

/// The whole of `wire.ts`.
fn generate() -> String {
    let cfg = Config::default();
    let mut out = String::from(
        "// GENERATED from crates/portrait-core/src/ws.rs by its unit test `ws::typescript`.\n\
         // Do not edit: change the Rust types, then run\n\
         //   PORTRAIT_BLESS=1 cargo test -p portrait-core ws::\n\
         // The WebSocket protocol of /v1/ws (docs/client-api.md).\n\n",
    );
    let decls = [
        ProfileItem::decl(&cfg),
        ChangeKind::decl(&cfg),
        ProfileEvent::decl(&cfg),
        OpName::decl(&cfg),
        ServerFrame::decl(&cfg),
        ClientOp::decl(&cfg),
    ];
    for d in decls {
        let _ = writeln!(out, "export {d}\n");
    }
    out.push_str("/** Close codes the server uses. */\nexport const CloseCode = {\n");
    for (name, code) in CloseCode::ALL {
        let _ = writeln!(out, "  {name}: {},", code.0);
    }
    out.push_str("} as const;\n\n");
    out.push_str("/** Error codes of `error` frames particular to the WebSocket. */\nexport const WsErrorCode = {\n");
    for (name, code) in WS_ERROR_CODES {
        let _ = writeln!(out, "  {name}: {},", code.0);
    }
    out.push_str("} as const;\n");
    out
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sdk/js/src/wire.ts")
}

#[test]
fn the_checked_in_wire_ts_is_what_the_rust_types_generate() {
    let want = generate();
    if std::env::var_os("PORTRAIT_BLESS").is_some() {
        std::fs::write(path(), &want).expect("write wire.ts");
    }
    let have = std::fs::read_to_string(path()).unwrap_or_default();
    assert!(
        have == want,
        "sdk/js/src/wire.ts is stale: run `PORTRAIT_BLESS=1 cargo test -p portrait-core ws::`\n\
         --- generated ---\n{want}"
    );
}
