//! The store lock: an exclusive `flock(2)` on `<store>/index.json.lock`, the protocol upstream
//! `ig` uses, so that `ig` and this crate can share a store.
//!
//! The lock is per open file description, so it also excludes other threads of this process that
//! open the file themselves. Locking the same store twice from one thread would deadlock; that is
//! detected and reported as [`StoreError::Reentrant`].

use std::cell::RefCell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use crate::error::StoreError;
use crate::layout::{LOCK_FILE, open_rw_create};

/// How long we poll quietly before telling the user we are waiting.
const QUIET_WAIT: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(20);

thread_local! {
    static HELD: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
}

/// A held store lock; released on drop (closing the file releases the flock).
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
    root: PathBuf,
}

impl StoreLock {
    /// Takes the lock of the store at `root` (a canonical path), waiting as long as needed and
    /// warning once the wait exceeds a second.
    pub(crate) fn acquire(root: &Path) -> Result<Self, StoreError> {
        let already = HELD.with(|h| h.borrow().iter().any(|p| p == root));
        if already {
            return Err(StoreError::Reentrant {
                path: root.to_owned(),
            });
        }
        let path = root.join(LOCK_FILE);
        let lock_err = |source| StoreError::Lock {
            path: path.clone(),
            source,
        };
        let file = open_rw_create(&path).map_err(lock_err)?;
        let start = Instant::now();
        let mut locked = FileExt::try_lock_exclusive(&file).map_err(lock_err)?;
        while !locked && start.elapsed() < QUIET_WAIT {
            std::thread::sleep(POLL);
            locked = FileExt::try_lock_exclusive(&file).map_err(lock_err)?;
        }
        if !locked {
            log::warn!(
                "waiting for the store lock at `{}` (another ig or ig-image holds it)",
                path.display()
            );
            FileExt::lock_exclusive(&file).map_err(lock_err)?;
            log::debug!(
                "got the store lock at `{}` after {:.1}s",
                path.display(),
                start.elapsed().as_secs_f64()
            );
        }
        HELD.with(|h| h.borrow_mut().push(root.to_owned()));
        Ok(Self {
            _file: file,
            root: root.to_owned(),
        })
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().position(|p| *p == self.root) {
                h.swap_remove(i);
            }
        });
        // The flock is released when `_file` is closed, right after this.
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn reentrant_lock_is_an_error_not_a_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let lock = StoreLock::acquire(dir.path()).unwrap();
        let err = StoreLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Reentrant { .. }), "{err}");
        drop(lock);
        StoreLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn excludes_other_threads_and_waits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let lock = StoreLock::acquire(&root).unwrap();
        let (tx, rx) = mpsc::channel();
        let r2 = root.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            let _l = StoreLock::acquire(&r2).unwrap();
            tx.send(start.elapsed()).unwrap();
        });
        // Held past the quiet period so the blocking path is exercised too.
        std::thread::sleep(Duration::from_millis(1300));
        assert!(
            rx.try_recv().is_err(),
            "the other thread got the lock early"
        );
        drop(lock);
        let waited = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(waited >= Duration::from_millis(1200), "{waited:?}");
        t.join().unwrap();
    }

    #[test]
    fn lock_is_a_real_flock() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = StoreLock::acquire(dir.path()).unwrap();
        // Another open file description (what upstream `ig` would have) cannot take it.
        let other = File::open(dir.path().join(LOCK_FILE)).unwrap();
        assert!(!FileExt::try_lock_exclusive(&other).unwrap());
    }
}
