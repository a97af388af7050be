//! One value per database file for the whole process (the lookups' shared map, the commit
//! count), found by the file's identity (device and inode, so that a file replaced under the same
//! path gets its own) and kept for as long as something holds it.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// A file's identity: device and inode.
type FileId = (u64, u64);

/// The live values by file (a handful of files per process: a list will do).
pub(super) struct PerFile<T>(Mutex<Vec<(FileId, Weak<T>)>>);

impl<T> PerFile<T> {
    pub(super) const fn new() -> Self {
        PerFile(Mutex::new(Vec::new()))
    }

    /// The live value of the file `meta` describes, else the one `make` gives (kept if any).
    /// `make` runs under the registry's lock, so a file never gets two.
    pub(super) fn get_or_make(
        &self,
        meta: &Metadata,
        make: impl FnOnce() -> Option<Arc<T>>,
    ) -> Option<Arc<T>> {
        let key = (meta.dev(), meta.ino());
        let mut values = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        values.retain(|(_, v)| v.strong_count() > 0);
        if let Some(live) = values
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.upgrade())
        {
            return Some(live);
        }
        let made = make()?;
        values.push((key, Arc::downgrade(&made)));
        Some(made)
    }
}
