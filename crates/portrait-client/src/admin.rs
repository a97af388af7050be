//! [`Admin`]: the typed client of the admin REST API (`v4/profile/*`, `v4/im_open_login_svc/*`)
//! for an app's backend.
//!
//! Every call returns a typed result, and a non-zero vendor `ErrorCode` is an `Err`
//! ([`ClientError::Api`]) carrying the code and `ErrorInfo`. The admin UserSig is minted from the
//! app's secret key once and re-minted before it expires (and after the server says 70001). The
//! HTTP client is the caller's, or one built with the builder's timeouts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portrait_core::wire::{
    AccountResultResponse, MultiAccountImportResponse, PortraitGetResponse, ProfileItem,
};
use portrait_core::{usersig, ErrorCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::profile::{AccountFailure, ImportAccount, ProfileUpdate, Profiles};
use crate::{envelope, urlencode, ClientError, Result};

/// A UserSig minted for the admin, reused until it nears expiry.
#[derive(Debug)]
struct SigCache {
    sig: String,
    /// Unix seconds after which a new one is minted (before the real expiry).
    renew_at: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Builds an [`Admin`]; see [`Admin::builder`].
#[derive(Debug)]
pub struct AdminBuilder {
    base: String,
    sdkappid: u64,
    identifier: String,
    key: String,
    http: Option<reqwest::Client>,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    sig_ttl: Duration,
}

impl AdminBuilder {
    /// Use this `reqwest::Client` (connection pool, proxy, TLS roots). Its own timeouts apply;
    /// [`AdminBuilder::timeout`] is added per request.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Time limit of each request, from sending to the whole answer (default 10 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Connect timeout of the client this builder makes (default 5 s; not applied to a client
    /// given with [`AdminBuilder::http_client`]).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Lifetime of the admin UserSigs minted (default 1 day). A new one is minted when less
    /// than a tenth of it (at most 5 minutes) is left.
    pub fn sig_ttl(mut self, ttl: Duration) -> Self {
        self.sig_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a base URL that is not `http(s)://…`; [`ClientError::Http`]
    /// if the HTTP client cannot be built.
    pub fn build(self) -> Result<Admin> {
        let base = checked_base(&self.base)?;
        let http = http_client(self.http, self.connect_timeout)?;
        Ok(Admin {
            inner: Arc::new(Inner {
                http,
                base,
                sdkappid: self.sdkappid,
                identifier: self.identifier,
                key: self.key,
                timeout: self.timeout.unwrap_or(Duration::from_secs(10)),
                sig_ttl: self.sig_ttl.as_secs(),
                sig: Mutex::new(None),
            }),
        })
    }
}

/// The builders' HTTP client: the caller's, or a new one with `connect_timeout`.
///
/// # Errors
/// [`ClientError::Http`] if a new client cannot be built.
pub(crate) fn http_client(
    given: Option<reqwest::Client>,
    connect_timeout: Duration,
) -> Result<reqwest::Client> {
    match given {
        Some(h) => Ok(h),
        None => Ok(reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()?),
    }
}

/// Checks and normalises a base URL (`http://host:port`, no trailing slash).
pub(crate) fn checked_base(base: &str) -> Result<String> {
    let b = base.trim_end_matches('/');
    if !(b.starts_with("http://") || b.starts_with("https://")) {
        return Err(ClientError::Config(format!(
            "base URL {base:?}: use http://HOST[:PORT] or https://…"
        )));
    }
    Ok(b.to_owned())
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: String,
    sdkappid: u64,
    identifier: String,
    key: String,
    timeout: Duration,
    sig_ttl: u64,
    sig: Mutex<Option<SigCache>>,
}

/// The typed admin client. Cheap to clone (shares its HTTP pool and UserSig).
///
/// ```no_run
/// # async fn run() -> portrait_client::Result<()> {
/// use portrait_client::{Admin, ProfileUpdate};
/// let admin = Admin::builder("http://127.0.0.1:8080", 1_400_000_001, "administrator", "secret-key")
///     .timeout(std::time::Duration::from_secs(5))
///     .build()?;
/// admin.account_import("alice", Some("Alice"), None).await?;
/// admin.portrait_set("alice", &ProfileUpdate::new().nick("Alice A.")).await?;
/// let profiles = admin.portrait_get(&["alice"], &["Tag_Profile_IM_Nick"]).await?;
/// assert_eq!(profiles.found[0].nick.as_deref(), Some("Alice A."));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

impl Admin {
    /// A builder for `base` (e.g. `http://127.0.0.1:8080`), acting as the admin `identifier` of
    /// app `sdkappid`, whose UserSigs are minted with the app's secret `key`.
    pub fn builder(
        base: impl Into<String>,
        sdkappid: u64,
        identifier: impl Into<String>,
        key: impl Into<String>,
    ) -> AdminBuilder {
        AdminBuilder {
            base: base.into(),
            sdkappid,
            identifier: identifier.into(),
            key: key.into(),
            http: None,
            timeout: None,
            connect_timeout: Duration::from_secs(5),
            sig_ttl: Duration::from_secs(86_400),
        }
    }

    /// The admin UserSig in use at `now` (Unix seconds): the cached one, or a new one when the
    /// cached one is within its renewal margin of expiry.
    fn usersig_at(&self, now: u64) -> String {
        let i = &self.inner;
        let mut cache = i.sig.lock().expect("sig lock");
        match &*cache {
            Some(c) if now < c.renew_at => c.sig.clone(),
            _ => {
                let sig = usersig::mint(i.sdkappid, &i.key, &i.identifier, now, i.sig_ttl);
                let margin = (i.sig_ttl / 10).min(300);
                *cache = Some(SigCache {
                    sig: sig.clone(),
                    renew_at: now + i.sig_ttl - margin,
                });
                sig
            }
        }
    }

    /// Forgets the cached UserSig (the server refused it).
    fn drop_sig(&self) {
        *self.inner.sig.lock().expect("sig lock") = None;
    }

    /// POSTs `body` to `api` and returns the answer's fields, or the vendor error.
    async fn call<B: Serialize, T: DeserializeOwned>(&self, api: &str, body: &B) -> Result<T> {
        let i = &self.inner;
        let url = format!(
            "{}/{api}?sdkappid={}&identifier={}&usersig={}&random={}&contenttype=json",
            i.base,
            i.sdkappid,
            urlencode(&i.identifier),
            self.usersig_at(now_secs()),
            rand::random::<u32>()
        );
        let resp = i
            .http
            .post(url)
            .timeout(i.timeout)
            .json(body)
            .send()
            .await?;
        let result = envelope(resp).await;
        if let Err(ClientError::Api { code, .. }) = &result {
            if *code == ErrorCode::SIG_EXPIRED {
                self.drop_sig();
            }
        }
        result
    }

    /// `account_import`: creates `user_id` (or updates its Nick/FaceUrl if it exists).
    ///
    /// # Errors
    /// [`ClientError::Api`] with the vendor code (e.g. 40005 sensitive word, 70402); transport.
    pub async fn account_import(
        &self,
        user_id: &str,
        nick: Option<&str>,
        face_url: Option<&str>,
    ) -> Result<()> {
        let body = ImportAccount {
            user_id: user_id.to_owned(),
            nick: nick.map(str::to_owned),
            face_url: face_url.map(str::to_owned),
        };
        self.call::<_, Value>("v4/im_open_login_svc/account_import", &body)
            .await
            .map(drop)
    }

    /// `multiaccount_import` (the `AccountList` form): up to 100 accounts, each with an optional
    /// Nick and FaceUrl; existing accounts get the new ones. Returns the accounts that could not
    /// be imported (`FailAccounts`).
    ///
    /// # Errors
    /// [`ClientError::Api`] (e.g. 70206 for more than 100); transport.
    pub async fn multiaccount_import(&self, accounts: &[ImportAccount]) -> Result<Vec<String>> {
        let r: MultiAccountImportResponse = self
            .call(
                "v4/im_open_login_svc/multiaccount_import",
                &json!({ "AccountList": accounts }),
            )
            .await?;
        Ok(r.fail_accounts)
    }

    /// `account_check`: for each account, in order, whether it is imported.
    ///
    /// # Errors
    /// [`ClientError::Api`]; transport.
    pub async fn account_check(&self, user_ids: &[&str]) -> Result<Vec<(String, bool)>> {
        let r: AccountResultResponse = self
            .call(
                "v4/im_open_login_svc/account_check",
                &json!({ "CheckItem": user_items(user_ids) }),
            )
            .await?;
        Ok(r.result_item
            .into_iter()
            .map(|i| (i.user_id, i.account_status.as_deref() == Some("Imported")))
            .collect())
    }

    /// `account_delete`: deletes the accounts; returns those that failed (e.g. 70107: did not
    /// exist).
    ///
    /// # Errors
    /// [`ClientError::Api`]; transport.
    pub async fn account_delete(&self, user_ids: &[&str]) -> Result<Vec<AccountFailure>> {
        let r: AccountResultResponse = self
            .call(
                "v4/im_open_login_svc/account_delete",
                &json!({ "DeleteItem": user_items(user_ids) }),
            )
            .await?;
        Ok(failures(r))
    }

    /// `kick`: revokes every UserSig of the user minted so far and closes their connections.
    ///
    /// # Errors
    /// [`ClientError::Api`] (70107: no such account); transport.
    pub async fn kick(&self, user_id: &str) -> Result<()> {
        self.call::<_, Value>("v4/im_open_login_svc/kick", &json!({ "UserID": user_id }))
            .await
            .map(drop)
    }

    /// `portrait_set`: writes `update` to `user_id`'s profile, atomically.
    ///
    /// # Errors
    /// [`ClientError::Api`] (40003 no such account, 40009 unknown tag, 40601 too long, …);
    /// transport.
    pub async fn portrait_set(&self, user_id: &str, update: &ProfileUpdate) -> Result<()> {
        let items: &[ProfileItem] = update.items();
        self.call::<_, Value>(
            "v4/profile/portrait_set",
            &json!({ "From_Account": user_id, "ProfileItem": items }),
        )
        .await
        .map(drop)
    }

    /// `portrait_import` (a Portrait extension): creates or updates up to 1000 accounts, each
    /// with any fields, in one call; returns the accounts that failed, with their codes (the
    /// others are written).
    ///
    /// # Errors
    /// [`ClientError::Api`] when the whole call is refused; transport.
    pub async fn portrait_import(
        &self,
        accounts: &[(&str, ProfileUpdate)],
    ) -> Result<Vec<AccountFailure>> {
        let list: Vec<Value> = accounts
            .iter()
            .map(|(user, update)| json!({ "UserID": user, "ProfileItem": update.items() }))
            .collect();
        let r: AccountResultResponse = self
            .call(
                "v4/profile/portrait_import",
                &json!({ "AccountList": list }),
            )
            .await?;
        Ok(failures(r))
    }

    /// `portrait_get`: up to 100 profiles with the fields `tags` (full tag names).
    ///
    /// # Errors
    /// [`ClientError::Api`] when the whole call fails (e.g. every account unknown: 40003);
    /// transport; [`ClientError::Decode`] for a value of an unexpected type.
    pub async fn portrait_get(&self, user_ids: &[&str], tags: &[&str]) -> Result<Profiles> {
        let r: PortraitGetResponse = self
            .call(
                "v4/profile/portrait_get",
                &json!({ "To_Account": user_ids, "TagList": tags }),
            )
            .await?;
        Profiles::from_wire(r.user_profile_item)
    }
}

/// The items of a `ResultItem` list that failed.
fn failures(r: AccountResultResponse) -> Vec<AccountFailure> {
    r.result_item
        .into_iter()
        .filter(|i| !i.result_code.is_ok())
        .map(|i| AccountFailure {
            user_id: i.user_id,
            code: i.result_code,
            info: i.result_info,
        })
        .collect()
}

fn user_items(user_ids: &[&str]) -> Vec<Value> {
    user_ids.iter().map(|u| json!({ "UserID": u })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_sig_is_minted_once_and_renewed_before_it_expires() {
        let admin = Admin::builder("http://127.0.0.1:1", 1_400_000_001, "administrator", "k")
            .sig_ttl(Duration::from_secs(1000))
            .build()
            .unwrap();
        let t0 = 1_700_000_000;
        let first = admin.usersig_at(t0);
        assert_eq!(admin.usersig_at(t0 + 500), first, "reused");
        // 100 s (a tenth) before expiry it is renewed, dated then.
        let renewed = admin.usersig_at(t0 + 900);
        assert_ne!(renewed, first);
        let sig = usersig::verify(&renewed, 1_400_000_001, "administrator", "k", t0 + 1800);
        assert!(
            sig.is_ok(),
            "the renewed sig is valid until t0 + 1900: {sig:?}"
        );
        let old = usersig::verify(&first, 1_400_000_001, "administrator", "k", t0 + 1001);
        assert!(old.is_err(), "the first one expired at t0 + 1000");
        admin.drop_sig();
        assert_ne!(
            admin.usersig_at(t0 + 901),
            renewed,
            "minted again after a refusal"
        );
    }

    #[test]
    fn a_base_url_without_scheme_is_refused() {
        let e = Admin::builder("127.0.0.1:8080", 1, "a", "k")
            .build()
            .unwrap_err();
        assert!(matches!(e, ClientError::Config(_)), "{e}");
    }
}
