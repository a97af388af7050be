//! The Tencent Cloud IM REST API, version `v4`.

pub mod im_open_login_svc;
pub mod profile;
