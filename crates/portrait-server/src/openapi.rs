//! The OpenAPI 3.1 document of every HTTP API, served at `GET /openapi.json` and printed by
//! `portrait openapi` (checked in as `docs/openapi.json`).
//!
//! Generated from the code: the request and response bodies are the `portrait_core::wire` types
//! (and the handlers' own), described by their `schemars::JsonSchema` derives, which follow their
//! serde attributes; the paths come from [`OPERATIONS`], which an API test checks against the
//! router (every route is documented and every documented path is routed). The envelope is the
//! vendor's: every `/v4` and `/v1` answer is HTTP 200 with `ActionStatus`, `ErrorCode` and
//! `ErrorInfo`; a success (`ErrorCode` 0) carries the API's own fields as well, a failure may not.
//!
//! What must not live here: behaviour. This module only describes what the handlers do.

use std::sync::OnceLock;

use portrait_core::wire::{
    AccountCheckRequest, AccountDeleteRequest, AccountImportRequest, AccountResultResponse,
    Envelope, MultiAccountImportRequest, MultiAccountImportResponse, PortraitGetRequest,
    PortraitGetResponse, PortraitImportRequest, PortraitSetRequest, UpdateMyProfileRequest,
    UpdateMyProfileResponse, UserIdItem,
};
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{json, Map, Value};

pub mod operator;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// An app admin (`identifier` is one of the app's admins), with a UserSig.
    Admin,
    /// Any account of the app, with its own UserSig (the client API).
    User,
    /// Nobody needs to sign in (operations routes).
    Anyone,
}

/// One documented operation.
pub struct Operation {
    /// The route's path.
    pub path: &'static str,
    /// `post` for the vendor APIs (the server takes any method), `get` otherwise.
    pub method: &'static str,
    /// Who may call it.
    pub caller: Caller,
    /// One line on what it does.
    pub summary: &'static str,
    /// The request body's schema, if the operation takes one.
    request: Option<fn(&mut SchemaGenerator) -> Schema>,
    /// The success answer's own fields besides the envelope, if any.
    response: Option<fn(&mut SchemaGenerator) -> Schema>,
    /// `true` for `/healthz` and `/metrics`: plain text, not the envelope.
    text: bool,
}

/// `get_my_profile`'s body (optional: an empty body reads every readable field).
#[derive(JsonSchema)]
#[allow(dead_code)] // describes the handler's own request type
struct GetMyProfileRequest {
    /// Tags to read; absent = every field the user may read.
    #[serde(rename = "TagList")]
    tag_list: Option<Vec<String>>,
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

const fn vendor(
    path: &'static str,
    caller: Caller,
    summary: &'static str,
    request: fn(&mut SchemaGenerator) -> Schema,
    response: Option<fn(&mut SchemaGenerator) -> Schema>,
) -> Operation {
    Operation {
        path,
        method: "post",
        caller,
        summary,
        request: Some(request),
        response,
        text: false,
    }
}

/// Every documented operation, in the order of the document.
pub const OPERATIONS: [Operation; 16] = [
    vendor(
        "/v4/profile/portrait_set",
        Caller::Admin,
        "Set standard and custom profile fields of one account.",
        schema::<PortraitSetRequest>,
        None,
    ),
    vendor(
        "/v4/profile/portrait_get",
        Caller::Admin,
        "Read profile fields of up to 100 accounts.",
        schema::<PortraitGetRequest>,
        Some(schema::<PortraitGetResponse>),
    ),
    vendor(
        "/v4/profile/portrait_import",
        Caller::Admin,
        "Create or update up to 1,000 accounts with profile fields (Portrait extension).",
        schema::<PortraitImportRequest>,
        Some(schema::<AccountResultResponse>),
    ),
    vendor(
        "/v4/im_open_login_svc/account_import",
        Caller::Admin,
        "Import one account, with an optional nickname and avatar.",
        schema::<AccountImportRequest>,
        None,
    ),
    vendor(
        "/v4/im_open_login_svc/multiaccount_import",
        Caller::Admin,
        "Import up to 100 accounts.",
        schema::<MultiAccountImportRequest>,
        Some(schema::<MultiAccountImportResponse>),
    ),
    vendor(
        "/v4/im_open_login_svc/account_delete",
        Caller::Admin,
        "Delete up to 100 accounts and their profiles.",
        schema::<AccountDeleteRequest>,
        Some(schema::<AccountResultResponse>),
    ),
    vendor(
        "/v4/im_open_login_svc/account_check",
        Caller::Admin,
        "Tell which of up to 100 accounts are imported.",
        schema::<AccountCheckRequest>,
        Some(schema::<AccountResultResponse>),
    ),
    vendor(
        "/v4/im_open_login_svc/kick",
        Caller::Admin,
        "Revoke every UserSig issued so far to an account and close its connections.",
        schema::<UserIdItem>,
        None,
    ),
    vendor(
        "/v1/profile/get_my_profile",
        Caller::User,
        "Read the signed-in user's own profile.",
        schema::<GetMyProfileRequest>,
        Some(schema::<PortraitGetResponse>),
    ),
    vendor(
        "/v1/profile/get_user_profile",
        Caller::User,
        "Read other users' profiles (the fields users may read).",
        schema::<PortraitGetRequest>,
        Some(schema::<PortraitGetResponse>),
    ),
    vendor(
        "/v1/profile/update_my_profile",
        Caller::User,
        "Write the signed-in user's own profile, optionally only at an expected version.",
        schema::<UpdateMyProfileRequest>,
        Some(schema::<UpdateMyProfileResponse>),
    ),
    Operation {
        path: "/v1/ws",
        method: "get",
        caller: Caller::User,
        summary: "WebSocket of change events (docs/client-api.md); without a WebSocket handshake \
                  the answer is the envelope of the refusal.",
        request: None,
        response: None,
        text: false,
    },
    Operation {
        path: "/healthz",
        method: "get",
        caller: Caller::Anyone,
        summary: "Liveness and store reachability: `ok`, or 503 `store unavailable`.",
        request: None,
        response: None,
        text: true,
    },
    Operation {
        path: "/metrics",
        method: "get",
        caller: Caller::Anyone,
        summary: "Prometheus metrics of this node (docs/operations.md).",
        request: None,
        response: None,
        text: true,
    },
    Operation {
        path: "/openapi.json",
        method: "get",
        caller: Caller::Anyone,
        summary: "This document.",
        request: None,
        response: None,
        text: false,
    },
    Operation {
        path: "/console/",
        method: "get",
        caller: Caller::Anyone,
        summary: "The web console (HTML; its scripts and styles are under /console/). It signs \
                  in with the operator token and calls the operator API.",
        request: None,
        response: None,
        text: false,
    },
];

/// The document as JSON bytes, built once.
pub fn bytes() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut out = serde_json::to_vec_pretty(&document()).expect("a JSON value");
        out.push(b'\n');
        out
    })
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let envelope = g.subschema_for::<Envelope>();
    let mut paths = Map::new();
    for op in &OPERATIONS {
        let mut operation = json!({
            "operationId": op.path.trim_end_matches('/').rsplit('/').next().unwrap_or(op.path).replace('.', "_"),
            "summary": op.summary,
            "tags": [tag(op.path)],
        });
        if op.caller != Caller::Anyone {
            operation["parameters"] = auth_parameters();
            operation["security"] = json!([{ "UserSig": [] }]);
        }
        if let Some(request) = op.request {
            operation["requestBody"] = json!({
                "required": false,
                "content": { "application/json": { "schema": request(&mut g) } },
            });
        }
        operation["responses"] = if op.text {
            json!({
                "200": { "description": "OK", "content": { "text/plain": { "schema": { "type": "string" } } } },
                "503": { "description": "The store is unreachable (health only)",
                         "content": { "text/plain": { "schema": { "type": "string" } } } },
            })
        } else if op.path == "/console/" {
            json!({ "200": { "description": "The console's page",
                             "content": { "text/html": { "schema": { "type": "string" } } } } })
        } else if op.path == "/openapi.json" {
            json!({ "200": { "description": "This document",
                             "content": { "application/json": { "schema": { "type": "object" } } } } })
        } else {
            let answer = match op.response {
                // A success carries the API's fields; a failure is the envelope alone.
                Some(body) => json!({ "oneOf": [
                    { "allOf": [envelope.clone(), body(&mut g), { "properties": { "ErrorCode": { "const": 0 } } }] },
                    { "allOf": [envelope.clone(), { "properties": { "ErrorCode": { "not": { "const": 0 } } } }] },
                ]}),
                None => json!(envelope.clone()),
            };
            let mut responses = json!({
                "200": {
                    "description": "The vendor envelope: ErrorCode 0 on success, else the refusal's code (README, error codes)",
                    "content": { "application/json": { "schema": answer } },
                },
            });
            if op.path == "/v1/ws" {
                responses["101"] = json!({ "description": "Switching to the WebSocket protocol" });
            }
            responses
        };
        paths.insert(op.path.to_owned(), json!({ op.method: operation }));
    }
    operator::add_paths(&mut g, &mut paths);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portrait",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted user profiles for chat apps: the Tencent Cloud IM REST API \
                            (v4), the client API (v1), the operator API (/admin/v1) and the \
                            operations routes. Every v4 and v1 answer is HTTP 200 with the vendor \
                            envelope; the operator API answers with HTTP statuses and JSON errors.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "paths": paths,
        "components": {
            "schemas": g.take_definitions(true),
            "securitySchemes": {
                "UserSig": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "usersig",
                    "description": "A TLSSigAPIv2 UserSig of `identifier`, minted with the app's secret key.",
                },
                "OperatorToken": operator::security_scheme(),
            },
        },
    })
}

/// The group an operation is listed under.
fn tag(path: &str) -> &'static str {
    if path.starts_with("/v4/profile/") {
        "profile"
    } else if path.starts_with("/v4/im_open_login_svc/") {
        "account"
    } else if path.starts_with("/v1/") {
        "client"
    } else if path.starts_with("/admin/") {
        "operator"
    } else {
        "operations"
    }
}

/// The query parameters every signed call carries besides `usersig` (a security scheme).
fn auth_parameters() -> Value {
    json!([
        { "name": "sdkappid", "in": "query", "required": true,
          "description": "The app's SDKAppID.", "schema": { "type": "integer", "minimum": 0 } },
        { "name": "identifier", "in": "query", "required": true,
          "description": "The caller: an admin for v4, the signed-in user for v1.",
          "schema": { "type": "string" } },
        { "name": "random", "in": "query", "required": false,
          "description": "A random 32-bit number (echoed by the vendor; not checked).",
          "schema": { "type": "integer", "minimum": 0, "maximum": 4294967295u64 } },
        { "name": "contenttype", "in": "query", "required": false,
          "description": "`json` (the only body format).", "schema": { "type": "string", "enum": ["json"] } },
    ])
}
