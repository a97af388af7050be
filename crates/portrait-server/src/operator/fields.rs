//! `/admin/v1/apps/{sdkappid}/fields…`: an app's custom fields. As with the vendor's console, a
//! field's name and type never change once created and a field is never deleted, only hidden
//! (every API then treats it as unknown; its stored values are kept).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use portrait_core::operator::{FieldList, FieldView};

use crate::error::OpError;
use crate::settings::CustomFieldConfig;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v1/apps/{sdkappid}/fields", get(list))
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
