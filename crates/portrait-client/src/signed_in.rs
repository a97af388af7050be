//! [`User`]: the typed client of one signed-in user (the client API, docs/client-api.md): the
//! profile calls with typed results and the change feed as a stream.
//!
//! A user's UserSig comes from the app's backend; give [`UserBuilder::refresh`] a hook that
//! fetches a new one, and the client uses it when the server says the current one expired (an
//! HTTP answer 70001 is retried once with the new sig; the feed reconnects with it).

use std::time::Duration;

use portrait_core::wire::{PortraitGetResponse, UpdateMyProfileResponse};
use portrait_core::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::admin::{checked_base, http_client};
use crate::feed::{Backoff, Changes, FeedConfig, SigRefresh};
use crate::profile::{Profile, ProfileUpdate, Profiles};
use crate::user::UserClient;
use crate::{envelope, ClientError, Result};

/// Builds a [`User`]; see [`User::builder`].
pub struct UserBuilder {
    base: String,
    sdkappid: u64,
    user_id: String,
    usersig: String,
    http: Option<reqwest::Client>,
    timeout: Duration,
    connect_timeout: Duration,
    feed: FeedConfig,
}

impl UserBuilder {
    /// Use this `reqwest::Client`; [`UserBuilder::timeout`] is added per request.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Time limit of each HTTP request (default 10 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Connect timeout of the client this builder makes (default 5 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Where new UserSigs come from when the current one expires ([`crate::refresh_with`]).
    pub fn refresh(mut self, hook: SigRefresh) -> Self {
        self.feed.refresh = Some(hook);
        self
    }

    /// Reconnection delays of the change feed (default 200 ms doubling to 30 s, jittered).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.feed.backoff = backoff;
        self
    }

    /// How long the change feed waits for a WebSocket handshake (default 10 s) and for any
    /// sign of life on an open connection — a frame or the server's ping — before it replaces
    /// the connection (default 60 s; keep it above the server's `[push] ping_interval_ms`).
    pub fn feed_timeouts(mut self, connect: Duration, liveness: Duration) -> Self {
        self.feed.connect_timeout = connect;
        self.feed.liveness = liveness;
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a bad base URL; [`ClientError::Http`] if the HTTP client
    /// cannot be built.
    pub fn build(self) -> Result<User> {
        let base = checked_base(&self.base)?;
        let http = http_client(self.http, self.connect_timeout)?;
        Ok(User {
            raw: UserClient::new(base, self.sdkappid, self.user_id, self.usersig).with_http(http),
            timeout: self.timeout,
            feed: self.feed,
        })
    }
}

/// A signed-in user. Cheap to clone; clones share the UserSig (a refresh reaches all).
///
/// ```no_run
/// # async fn run(usersig: String) -> portrait_client::Result<()> {
/// use futures_util::StreamExt;
/// use portrait_client::{FeedEvent, User};
/// let alice = User::builder("http://127.0.0.1:8080", 1_400_000_001, "alice", usersig).build()?;
/// let me = alice.get_my_profile(&[]).await?;
/// println!("signed in as {:?}, profile version {:?}", me.nick, me.version);
/// let mut feed = alice.changes(&["bob"], me.version);
/// while let Some(item) = feed.next().await {
///     match item {
///         Ok(FeedEvent::Change(ev)) => println!("{} changed: {:?}", ev.account, ev.items),
///         Ok(FeedEvent::Live { cursor }) => println!("live from {cursor}"),
///         Err(e) if e.is_terminal() => return Err(e.into()),
///         Err(e) => eprintln!("feed: {e}"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct User {
    raw: UserClient,
    timeout: Duration,
    feed: FeedConfig,
}

impl User {
    /// A builder for `base`, signed in as `user_id` of app `sdkappid` with `usersig`.
    pub fn builder(
        base: impl Into<String>,
        sdkappid: u64,
        user_id: impl Into<String>,
        usersig: impl Into<String>,
    ) -> UserBuilder {
        UserBuilder {
            base: base.into(),
            sdkappid,
            user_id: user_id.into(),
            usersig: usersig.into(),
            http: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            feed: FeedConfig::default(),
        }
    }

    /// The signed-in user.
    pub fn user_id(&self) -> &str {
        self.raw.user()
    }

    /// The envelope-level client underneath (raw WebSocket, any call).
    pub fn raw(&self) -> &UserClient {
        &self.raw
    }

    async fn call_once<T: DeserializeOwned>(&self, api: &str, body: &Value) -> Result<T> {
        let resp = self
            .raw
            .http()
            .post(self.raw.url(api))
            .timeout(self.timeout)
            .json(body)
            .send()
            .await?;
        envelope(resp).await
    }

    /// Calls `api`; on 70001 (UserSig expired) with a refresh hook, refreshes and retries once.
    async fn call<T: DeserializeOwned>(&self, api: &str, body: &Value) -> Result<T> {
        match self.call_once(api, body).await {
            Err(ClientError::Api { code, .. })
                if code == ErrorCode::SIG_EXPIRED && self.feed.refresh.is_some() =>
            {
                let hook = self.feed.refresh.as_ref().expect("checked");
                let sig = hook()
                    .await
                    .map_err(|e| ClientError::Refresh(e.to_string()))?;
                self.raw.set_usersig(sig);
                self.call_once(api, body).await
            }
            other => other,
        }
    }

    /// `getMyProfile`: the caller's profile, all readable fields or only `tags`.
    ///
    /// # Errors
    /// [`ClientError::Api`] (70107: the account was never imported); transport.
    pub async fn get_my_profile(&self, tags: &[&str]) -> Result<Profile> {
        let body = if tags.is_empty() {
            json!({})
        } else {
            json!({ "TagList": tags })
        };
        let r: PortraitGetResponse = self.call("v1/profile/get_my_profile", &body).await?;
        let mut profiles = Profiles::from_wire(r.user_profile_item)?;
        match profiles.failed.pop() {
            Some(f) => Err(ClientError::Api {
                code: f.code,
                info: f.info,
            }),
            None => profiles
                .found
                .pop()
                .ok_or_else(|| ClientError::Decode("no profile in the answer".into())),
        }
    }

    /// `getUserProfile`: up to 100 profiles, all user-readable fields or only `tags`.
    ///
    /// # Errors
    /// [`ClientError::Api`]; transport.
    pub async fn get_user_profile(&self, user_ids: &[&str], tags: &[&str]) -> Result<Profiles> {
        let mut body = json!({ "To_Account": user_ids });
        if !tags.is_empty() {
            body["TagList"] = json!(tags);
        }
        let r: PortraitGetResponse = self.call("v1/profile/get_user_profile", &body).await?;
        Profiles::from_wire(r.user_profile_item)
    }

    /// `updateMyProfile`: writes `update` atomically, only if the profile is still at
    /// `expected_version` when given. Returns the new version.
    ///
    /// # Errors
    /// [`ClientError::Api`] — 49001 when the profile moved on since `expected_version` (re-read
    /// and decide), 40008 for a field users may not write; transport.
    pub async fn update_my_profile(
        &self,
        update: &ProfileUpdate,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        let mut body = json!({ "ProfileItem": update.items() });
        if let Some(v) = expected_version {
            body["ExpectedVersion"] = json!(v);
        }
        let r: UpdateMyProfileResponse = self.call("v1/profile/update_my_profile", &body).await?;
        Ok(r.version)
    }

    /// The change feed of `accounts` and the own account, from `since` (a cursor or profile
    /// version seen before) or from now. See [`crate::feed`] for what it yields. Needs a Tokio
    /// runtime.
    pub fn changes(&self, accounts: &[&str], since: Option<u64>) -> Changes {
        self.raw.changes_with(accounts, since, self.feed.clone())
    }
}
