//! The operator API's part of the OpenAPI document (`/admin/v1/*`, docs/operator-api.md): every
//! operation with its bearer-token security, path parameters, JSON bodies and JSON error answers
//! (`portrait_core::operator::OperatorError`, with the HTTP statuses of `crate::error::OpError`).
//!
//! Every operation may answer 401 (no or wrong token), 404 (the API is off on the node, or no
//! such app) and 429 (too many failed sign-ins); the others are listed per operation.

use portrait_core::operator::{
    AccountList, AccountView, AppCreate, AppCreated, AppKey, AppList, AppMove, AppMoved, AppPatch,
    AppView, FieldAdd, FieldList, FieldPatch, FieldView, KeyRotate, OperatorError, WebhookState,
};
use schemars::generate::SchemaGenerator;
use schemars::Schema;
use serde_json::{json, Map, Value};

use super::schema;

/// One operation of the operator API.
pub struct OperatorOp {
    /// The route's path, with `{parameters}`.
    pub path: &'static str,
    /// `get`, `post`, `patch` or `delete`.
    pub method: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// The request body's schema, if it takes one.
    request: Option<fn(&mut SchemaGenerator) -> Schema>,
    /// The success status and body.
    response: (u16, fn(&mut SchemaGenerator) -> Schema),
    /// Failure statuses besides 401, 404 and 429.
    errors: &'static [u16],
    /// Whether it takes `If-Match`.
    if_match: bool,
    /// Its query parameters: name, JSON schema type, description (none are required).
    query: &'static [(&'static str, &'static str, &'static str)],
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Option<fn(&mut SchemaGenerator) -> Schema>,
    response: (u16, fn(&mut SchemaGenerator) -> Schema),
    errors: &'static [u16],
) -> OperatorOp {
    OperatorOp {
        path,
        method,
        summary,
        request,
        response,
        errors,
        if_match: false,
        query: &[],
    }
}

/// Every operation of the operator API, in the order of the document.
pub const OPERATOR_OPERATIONS: &[OperatorOp] = &[
    op(
        "get",
        "/admin/v1/apps",
        "List every app of the node.",
        None,
        (200, schema::<AppList>),
        &[],
    ),
    op(
        "post",
        "/admin/v1/apps",
        "Create an app (its SDKAppID and key are generated when absent).",
        Some(schema::<AppCreate>),
        (201, schema::<AppCreated>),
        &[400, 409],
    ),
    op(
        "get",
        "/admin/v1/apps/{sdkappid}",
        "Show an app (never its key).",
        None,
        (200, schema::<AppView>),
        &[400],
    ),
    OperatorOp {
        if_match: true,
        ..op(
            "patch",
            "/admin/v1/apps/{sdkappid}",
            "Change an app's settings; disable or enable it.",
            Some(schema::<AppPatch>),
            (200, schema::<AppView>),
            &[400, 412],
        )
    },
    op(
        "get",
        "/admin/v1/apps/{sdkappid}/key",
        "Show an app's secret key.",
        None,
        (200, schema::<AppKey>),
        &[400],
    ),
    op(
        "post",
        "/admin/v1/apps/{sdkappid}/rotate-key",
        "Replace an app's key; the old one verifies until the grace period ends.",
        Some(schema::<KeyRotate>),
        (200, schema::<AppKey>),
        &[400],
    ),
    op(
        "post",
        "/admin/v1/apps/{sdkappid}/move",
        "Move an app's data to another shard while it is served (writes wait at most about a second).",
        Some(schema::<AppMove>),
        (200, schema::<AppMoved>),
        &[400, 409, 504],
    ),
    op(
        "get",
        "/admin/v1/apps/{sdkappid}/fields",
        "List an app's custom fields, hidden ones included.",
        None,
        (200, schema::<FieldList>),
        &[400],
    ),
    op(
        "post",
        "/admin/v1/apps/{sdkappid}/fields",
        "Add a custom field (its name and type never change).",
        Some(schema::<FieldAdd>),
        (201, schema::<FieldView>),
        &[400, 409],
    ),
    op(
        "patch",
        "/admin/v1/apps/{sdkappid}/fields/{name}",
        "Hide or show a custom field, or change its permissions.",
        Some(schema::<FieldPatch>),
        (200, schema::<FieldView>),
        &[400],
    ),
    OperatorOp {
        query: &[
            (
                "prefix",
                "string",
                "Only UserIDs starting with this (every character literal).",
            ),
            (
                "after",
                "string",
                "Start after this UserID: the `next` of the previous page.",
            ),
            (
                "limit",
                "integer",
                "UserIDs per page, 1 to 1000 (default 100).",
            ),
        ],
        ..op(
            "get",
            "/admin/v1/apps/{sdkappid}/accounts",
            "List an app's UserIDs in ascending order, a page at a time.",
            None,
            (200, schema::<AccountList>),
            &[400],
        )
    },
    op(
        "get",
        "/admin/v1/apps/{sdkappid}/accounts/{user_id}",
        "Show an account: every field (hidden ones included), version, recent changes, kick.",
        None,
        (200, schema::<AccountView>),
        &[400],
    ),
    op(
        "delete",
        "/admin/v1/apps/{sdkappid}/accounts/{user_id}",
        "Delete an account and its profile (as account_delete).",
        None,
        (204, schema::<()>),
        &[400],
    ),
    op(
        "post",
        "/admin/v1/apps/{sdkappid}/accounts/{user_id}/kick",
        "Revoke an account's UserSigs on every node and close its connections (as kick).",
        None,
        (204, schema::<()>),
        &[400],
    ),
    op(
        "get",
        "/admin/v1/apps/{sdkappid}/webhook",
        "Show the webhook's delivery on this node: cursor, head, lag, lease, recent failures.",
        None,
        (200, schema::<WebhookState>),
        &[400],
    ),
];

/// Adds the operator operations to `paths`.
pub fn add_paths(g: &mut SchemaGenerator, paths: &mut Map<String, Value>) {
    let error = g.subschema_for::<OperatorError>();
    for op in OPERATOR_OPERATIONS {
        let mut operation = json!({
            "operationId": operation_id(op),
            "summary": op.summary,
            "tags": ["operator"],
            "security": [{ "OperatorToken": [] }],
        });
        let mut parameters = path_parameters(op.path);
        for (name, kind, description) in op.query {
            parameters.push(json!({
                "name": name, "in": "query", "required": false,
                "description": description,
                "schema": { "type": kind },
            }));
        }
        if op.if_match {
            parameters.push(json!({
                "name": "If-Match", "in": "header", "required": false,
                "description": "The app's revision this change is based on; 412 if it is not the current one.",
                "schema": { "type": "string" },
            }));
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(request) = op.request {
            operation["requestBody"] = json!({
                "required": false,
                "content": { "application/json": { "schema": request(g) } },
            });
        }
        let (status, body) = op.response;
        let mut responses = Map::new();
        let success = if status == 204 {
            json!({ "description": "Done (no body)" })
        } else {
            json!({ "description": "Success",
                    "content": { "application/json": { "schema": body(g) } } })
        };
        responses.insert(status.to_string(), success);
        let mut errors: Vec<u16> = vec![401, 404, 429];
        errors.extend_from_slice(op.errors);
        if op.request.is_some() {
            errors.push(400);
        }
        errors.sort_unstable();
        errors.dedup();
        for e in errors {
            responses.insert(
                e.to_string(),
                json!({ "description": describe(e),
                        "content": { "application/json": { "schema": error.clone() } } }),
            );
        }
        operation["responses"] = Value::Object(responses);
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
}

/// The security scheme of the operator API.
pub fn security_scheme() -> Value {
    json!({
        "type": "http",
        "scheme": "bearer",
        "description": "The operator token (`[operator] token` or `token_file`), not an app's UserSig.",
    })
}

fn operation_id(op: &OperatorOp) -> String {
    let mut id = op.method.to_owned();
    for part in op.path.trim_start_matches("/admin/v1/").split('/') {
        id.push('_');
        id.push_str(&part.replace(['{', '}'], "").replace('-', "_"));
    }
    id
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|p| p.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| match name {
            "sdkappid" => json!({
                "name": name, "in": "path", "required": true,
                "description": "The app's SDKAppID.",
                "schema": { "type": "integer", "minimum": 0 },
            }),
            _ => json!({
                "name": name, "in": "path", "required": true,
                "schema": { "type": "string" },
            }),
        })
        .collect()
}

fn describe(status: u16) -> &'static str {
    match status {
        400 => "invalid: the body or a parameter is malformed or out of range",
        401 => "unauthorized: no or a wrong operator token",
        404 => "not_found (the operator API is off on this node, or no such path), app_not_found, field_not_found or account_not_found",
        409 => "app_exists, field_exists or too_many_fields",
        412 => "revision_mismatch: If-Match names another revision",
        429 => "too_many_attempts: too many failed sign-ins on this node within a second",
        504 => "move_unfinished: the move did not finish within two minutes; it goes on by itself",
        _ => "failure",
    }
}
