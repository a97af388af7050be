//! Step 3 of a batch of sets ([`super::batch`]), in memory: each job, in queue order, is merged
//! onto its account as the jobs before it left it and takes the app's next version, or fails
//! alone and takes none; the result is each job's answer and the parameters of the one statement
//! that writes the batch ([`super::batch::WRITE_SQL`]). Pure: no connection here.

use std::collections::HashMap;

use crate::batch::{take_versions, SetJob};
use crate::codec::{unsigned, version_key};
use crate::{AppId, Result, StoreError};

/// A batch staged in memory: each job's result, and what [`WRITE_SQL`] writes.
pub(super) struct Staged {
    /// Per job, in order: its version, or its own error (nothing of it is written).
    pub(super) results: Vec<Result<u64>>,
    /// `None` if every job failed alone.
    pub(super) write: Option<Write>,
}

/// The parameters of [`WRITE_SQL`].
pub(super) struct Write {
    pub(super) users: Vec<String>,
    pub(super) profiles: Vec<String>,
    pub(super) versions: Vec<i64>,
    pub(super) change_versions: Vec<i64>,
    pub(super) change_users: Vec<String>,
    pub(super) operators: Vec<String>,
    pub(super) client_ips: Vec<String>,
    pub(super) items: Vec<String>,
    /// Per change, the version of its account's previous change.
    pub(super) prevs: Vec<i64>,
    /// The app's new version.
    pub(super) last: i64,
}

/// An account as the batch knows it: as read, then as the jobs before left it.
struct Account {
    profile: String,
    /// As stored (checked to be non-negative when a job needs it).
    version: i64,
    written: bool,
}

/// Step 3: merges `jobs`, in order, onto the accounts `stored` (`user, profile, version` rows
/// read under the app's lock, `last` the app's version then) and hands out versions.
pub(super) fn stage<'a>(
    app: AppId,
    mut last: u64,
    stored: Vec<(String, String, i64)>,
    jobs: impl ExactSizeIterator<Item = &'a SetJob>,
) -> Staged {
    let mut accounts: HashMap<String, Account> = stored
        .into_iter()
        .map(|(user, profile, version)| {
            let account = Account {
                profile,
                version,
                written: false,
            };
            (user, account)
        })
        .collect();
    let mut results = Vec::with_capacity(jobs.len());
    let mut change_versions = Vec::with_capacity(jobs.len());
    let mut change_users = Vec::with_capacity(jobs.len());
    let mut operators = Vec::with_capacity(jobs.len());
    let mut client_ips = Vec::with_capacity(jobs.len());
    let mut prevs = Vec::with_capacity(jobs.len());
    let mut items = Vec::with_capacity(jobs.len());
    for job in jobs {
        let Some(account) = accounts.get_mut(&job.user) else {
            results.push(Err(StoreError::NotFound));
            continue;
        };
        let staged = unsigned(account.version, "an account version")
            .and_then(|current| job.apply(&account.profile, current))
            .and_then(|profile| {
                let version = take_versions(app, last, 1)?;
                Ok((profile, version, version_key(version)?))
            });
        match staged {
            Ok((profile, version, key)) => {
                last = version;
                prevs.push(account.version);
                *account = Account {
                    profile,
                    version: key,
                    written: true,
                };
                change_versions.push(key);
                change_users.push(job.user.clone());
                operators.push(job.origin.operator.clone());
                client_ips.push(job.origin.client_ip.clone());
                items.push(job.change_items.clone());
                results.push(Ok(version));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    let Some(&new_last) = change_versions.last() else {
        return Staged {
            results,
            write: None,
        };
    };
    let mut write = Write {
        users: Vec::new(),
        profiles: Vec::new(),
        versions: Vec::new(),
        change_versions,
        change_users,
        operators,
        client_ips,
        items,
        prevs,
        last: new_last,
    };
    for (user, account) in accounts {
        if account.written {
            write.users.push(user);
            write.profiles.push(account.profile);
            write.versions.push(account.version);
        }
    }
    Staged {
        results,
        write: Some(write),
    }
}

#[cfg(test)]
mod tests {
    use portrait_core::schema::StandardTag;
    use portrait_core::{ProfileValue, Tag};

    use super::*;
    use crate::codec::OwnedOrigin;

    fn job(user: &str, level: u64, expected: Option<u64>) -> SetJob {
        SetJob {
            app: 7,
            user: user.into(),
            items: vec![(Tag::Standard(StandardTag::Level), ProfileValue::Int(level))],
            change_items: format!("V{level}#"),
            origin: OwnedOrigin {
                operator: user.into(),
                client_ip: String::new(),
            },
            expected,
        }
    }

    #[test]
    fn staging_composes_jobs_and_failed_jobs_take_no_version() {
        let stored = vec![
            ("a".to_owned(), r#"{"IM_Nick":"A"}"#.to_owned(), 3),
            ("b".to_owned(), "{}".to_owned(), 5),
            ("bad".to_owned(), "{}".to_owned(), -1),
        ];
        let jobs = [
            job("a", 1, None),     // 11
            job("ghost", 2, None), // missing
            job("a", 2, Some(3)),  // stale: a is at 11 now
            job("a", 3, Some(11)), // 12
            job("b", 4, Some(5)),  // 13
            job("bad", 5, None),   // corrupt version
        ];
        let staged = stage(7, 10, stored, jobs.iter());
        let summary: Vec<String> = staged
            .results
            .iter()
            .map(|r| match r {
                Ok(v) => v.to_string(),
                Err(StoreError::VersionConflict { current }) => format!("conflict@{current}"),
                Err(StoreError::NotFound) => "missing".into(),
                Err(StoreError::Corrupt(_)) => "corrupt".into(),
                Err(e) => format!("{e:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            ["11", "missing", "conflict@11", "12", "13", "corrupt"]
        );
        let w = staged.write.expect("something to write");
        assert_eq!(w.change_versions, [11, 12, 13]);
        assert_eq!(w.change_users, ["a", "a", "b"]);
        assert_eq!(w.last, 13);
        let mut written: Vec<(&str, &str, i64)> = w
            .users
            .iter()
            .zip(&w.profiles)
            .zip(&w.versions)
            .map(|((u, p), v)| (u.as_str(), p.as_str(), *v))
            .collect();
        written.sort_unstable();
        assert_eq!(
            written,
            [("a", "V3#N1'A", 12), ("b", "V4#", 13)],
            "each account once, as its last job left it"
        );
    }

    #[test]
    fn a_batch_of_failing_jobs_writes_nothing() {
        let staged = stage(7, 10, Vec::new(), [job("ghost", 1, None)].iter());
        assert!(staged.write.is_none());
        assert!(matches!(staged.results[..], [Err(StoreError::NotFound)]));
    }

    #[test]
    fn versions_that_would_overflow_fail_the_job_alone() {
        let stored = vec![("a".to_owned(), "{}".to_owned(), 1)];
        let last = i64::MAX as u64 - 1;
        let jobs = [job("a", 1, None), job("a", 2, None)];
        let staged = stage(7, last, stored, jobs.iter());
        assert!(matches!(staged.results[0], Ok(v) if v == i64::MAX as u64));
        assert!(matches!(
            staged.results[1],
            Err(StoreError::Conflict { .. })
        ));
    }
}
