//! `/admin/v1/apps/{sdkappid}/fields…`: an app's custom fields. As with the vendor's console, a
//! field's name and type never change once created and a field is never deleted, only hidden
//! (every API then treats it as unknown; its stored values are kept).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use portrait_core::operator::{FieldAdd, FieldList, FieldPatch, FieldView, Who};
use portrait_core::schema::MAX_CUSTOM_FIELDS;

use super::Body;
use crate::error::OpError;
use crate::settings::CustomFieldConfig;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/apps/{sdkappid}/fields", get(list).post(add))
        .route("/admin/v1/apps/{sdkappid}/fields/{name}", patch(change))
}

/// `POST /admin/v1/apps/{sdkappid}/fields`.
async fn add(
    State(state): State<AppState>,
    Path(sdkappid): Path<String>,
    Body(req): Body<FieldAdd>,
) -> Result<(StatusCode, Json<FieldView>), OpError> {
    portrait_core::schema::check_custom_name(&req.name)
        .map_err(|e| OpError::Invalid(format!("name {:?}: {e}", req.name)))?;
    let field = CustomFieldConfig {
        name: req.name.clone(),
        kind: req.kind,
        max_length: req
            .max_length
            .unwrap_or(portrait_core::schema::MAX_STRING_BYTES),
        read: perms("read", req.read)?,
        write: perms("write", req.write)?,
        hidden: false,
    };
    field
        .to_field()
        .map_err(|e| OpError::Invalid(e.to_string()))?;
    let app = super::apps::change(&state, &sdkappid, None, |cfg| {
        if cfg.custom_fields.iter().any(|f| f.name == field.name) {
            return Err(OpError::FieldExists(field.name.clone()));
        }
        if cfg.custom_fields.len() >= MAX_CUSTOM_FIELDS {
            return Err(OpError::TooManyFields);
        }
        cfg.custom_fields.push(field.clone());
        Ok(())
    })
    .await?;
    let added = find(&app.config.custom_fields, &req.name)?;
    Ok((StatusCode::CREATED, Json(view(added))))
}

/// `PATCH /admin/v1/apps/{sdkappid}/fields/{name}`.
async fn change(
    State(state): State<AppState>,
    Path((sdkappid, name)): Path<(String, String)>,
    Body(req): Body<FieldPatch>,
) -> Result<Json<FieldView>, OpError> {
    let read = req.read.map(|r| perms("read", Some(r))).transpose()?;
    let write = req.write.map(|w| perms("write", Some(w))).transpose()?;
    let app = super::apps::change(&state, &sdkappid, None, |cfg| {
        let f = cfg
            .custom_fields
            .iter_mut()
            .find(|f| f.name == name)
            .ok_or_else(|| OpError::FieldNotFound(name.clone()))?;
        if let Some(h) = req.hidden {
            f.hidden = h;
        }
        if let Some(r) = &read {
            f.read.clone_from(r);
        }
        if let Some(w) = &write {
            f.write.clone_from(w);
        }
        Ok(())
    })
    .await?;
    Ok(Json(view(find(&app.config.custom_fields, &name)?)))
}

/// A permission list: default both; never empty.
fn perms(what: &str, who: Option<Vec<Who>>) -> Result<Vec<Who>, OpError> {
    let mut who = who.unwrap_or_else(|| vec![Who::User, Who::Admin]);
    who.sort_unstable();
    who.dedup();
    if who.is_empty() {
        return Err(OpError::Invalid(format!(
            "{what} must allow at least one of \"user\", \"admin\""
        )));
    }
    Ok(who)
}

fn find<'a>(fields: &'a [CustomFieldConfig], name: &str) -> Result<&'a CustomFieldConfig, OpError> {
    fields
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| OpError::FieldNotFound(name.to_owned()))
}

/// `GET /admin/v1/apps/{sdkappid}/fields`.
async fn list(
    State(state): State<AppState>,
    Path(sdkappid): Path<String>,
) -> Result<Json<FieldList>, OpError> {
    let app = super::apps::find(&state, &sdkappid)?;
    Ok(Json(FieldList {
        fields: app.config.custom_fields.iter().map(view).collect(),
    }))
}

/// What the API shows of a field.
pub fn view(f: &CustomFieldConfig) -> FieldView {
    FieldView {
        name: f.name.clone(),
        kind: f.kind,
        max_length: f.max_length,
        read: f.read.clone(),
        write: f.write.clone(),
        hidden: f.hidden,
    }
}
