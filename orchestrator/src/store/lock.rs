//! The daemon's exclusive lock on its database: an advisory lock on a `<db>.lock` sidecar.
//!
//! `File::try_lock` is `flock(LOCK_EX | LOCK_NB)` on Linux. The lock belongs to the open
//! file description, so it is released when the returned `File` is dropped or the process
//! dies, and two opens in one process conflict just like two daemons. The sidecar is never
//! deleted: deleting it would let a second daemon lock a fresh inode.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::error::StoreError;

/// The sidecar lock file of the database at `db`: the same name with `.lock` appended.
pub(super) fn lock_path(db: &Path) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock for the database at `db`, failing at once if it is held.
pub(super) fn lock_exclusive(db: &Path) -> Result<File, StoreError> {
    let path = lock_path(db);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| StoreError::LockFile {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: db.to_owned(),
        }),
        Err(TryLockError::Error(source)) => Err(StoreError::LockFile { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_path_appends_a_suffix() {
        assert_eq!(
            lock_path(Path::new("/data/vm-system.db")),
            Path::new("/data/vm-system.db.lock")
        );
    }

    #[test]
    fn second_lock_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = lock_exclusive(&db).unwrap();
        let err = lock_exclusive(&db).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
        drop(first);
        lock_exclusive(&db).unwrap();
    }
}
