//! `[push] nats_url`: one NATS server or the comma-separated servers of a NATS cluster
//! (`nats://127.0.0.1:4222,nats://127.0.0.1:4223`), parsed into the list the client connects to
//! (`push/bus.rs`, `coherence.rs`). The client reconnects to another listed (or, for push,
//! cluster-announced) server when the one it uses dies; a node needs no restart. The coherence
//! connection keeps the listed order and returns to the first listed server that answers
//! (`coherence/home.rs`), so every node must list the servers in the same order.

use async_nats::ServerAddr;
use portrait_store::redact_url;

/// The servers of `nats_url`, in order; empty for an empty setting (no bus).
///
/// # Errors
/// Names the entry that is empty or not a NATS URL (`nats://`, `tls://`, `ws://`, `wss://`;
/// a bare `HOST:PORT` means `nats://`), never echoing a password.
pub fn servers(nats_url: &str) -> anyhow::Result<Vec<ServerAddr>> {
    if nats_url.trim().is_empty() {
        return Ok(Vec::new());
    }
    nats_url
        .split(',')
        .map(str::trim)
        .enumerate()
        .map(|(n, entry)| {
            anyhow::ensure!(
                !entry.is_empty(),
                "push: nats_url: server {} of the list is empty (separate servers with one comma)",
                n + 1
            );
            entry.parse::<ServerAddr>().map_err(|e| {
                anyhow::anyhow!(
                    "push: nats_url: server {} ({}): {e}",
                    n + 1,
                    redact_url(entry)
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_list_gives_every_server_in_order() {
        let got = servers("nats://127.0.0.1:4222, nats://127.0.0.1:4223,10.0.0.9:4224").unwrap();
        let got: Vec<String> = got
            .iter()
            .map(|s| format!("{}:{}", s.host(), s.port()))
            .collect();
        assert_eq!(got, ["127.0.0.1:4222", "127.0.0.1:4223", "10.0.0.9:4224"]);
        assert!(servers("").unwrap().is_empty());
        assert_eq!(servers("nats://h:1").unwrap().len(), 1);
    }

    #[test]
    fn bad_entries_are_refused_by_position_without_the_password() {
        for (list, says) in [
            ("nats://h:1,,nats://h:2", "server 2 of the list is empty"),
            ("nats://h:1,", "server 2 of the list is empty"),
            (
                "nats://h:1,http://u:hunter2@h:2",
                "server 2 (http://u:***@h:2)",
            ),
            ("nats://u:hunter2@h:notaport", "server 1"),
        ] {
            let err = format!("{:#}", servers(list).unwrap_err());
            assert!(err.contains(says), "{list}: {err}");
            assert!(!err.contains("hunter2"), "{list}: {err}");
        }
    }

    #[test]
    fn settings_validation_refuses_a_bad_server_list() {
        let mut settings = crate::settings::Settings::default();
        settings.push.nats_url = "nats://h:1,nats://h:2".into();
        settings.validate().unwrap();
        settings.push.nats_url = "nats://h:1;nats://h:2".into();
        let err = format!("{:#}", settings.validate().unwrap_err());
        assert!(err.contains("push: nats_url: server 1"), "{err}");
    }
}
