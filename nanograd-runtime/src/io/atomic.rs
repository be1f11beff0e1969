//! Atomic file replacement: [`write_atomic`] writes a temporary file in the target's
//! directory, flushes it to disk (`fsync`), renames it over the target and flushes the
//! directory. A reader sees the old file or the new one, never a mix; a save that fails or
//! is interrupted midway leaves the old file as it was.
//!
//! The temporary file is `.<name>.<pid>.<n>.tmp` beside the target, locked
//! ([`File::try_lock`]) from its creation until it has been renamed. On an error it is
//! removed. If the process dies while writing it, it stays behind (a hidden file, never
//! read) and the target is intact; the operating system releases its lock with the process.
//! The next save to the same path removes every such leftover of that path's temporary
//! files that nobody holds locked, so interrupted saves do not pile up. A save in progress
//! in another thread or process holds its lock and is left alone; one that loses its file to
//! a cleaner between creating and locking it sees that and starts again with a new one.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{invalid, Error, Result};

/// Numbers the temporary files of this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces the file at `path` by `bytes`, atomically (see the [module docs](self)).
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Replaces the file at `path` by what `write` writes into a fresh temporary file,
/// atomically: if `write` (or flushing, or the rename) fails, the temporary file is removed,
/// the previous file at `path` is untouched, and the error is returned.
pub fn write_atomic_with(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let io_error = |p: &Path, source| Error::Io {
        path: p.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        invalid(
            "write_atomic",
            format!("`{}` does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    remove_leftovers(dir, name);
    let (temp, mut file) = create_temp(dir, name.to_os_string())?;
    let written = write(&mut file).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(&temp);
        return Err(io_error(&temp, e));
    }
    // Unix renames an open file: keep it (and its lock) until the rename, so that no
    // cleaner takes it for a leftover. Elsewhere an open file may not be renamed.
    #[cfg(not(unix))]
    drop(file);
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(io_error(path, e));
    }
    #[cfg(unix)]
    drop(file);
    sync_dir(dir).map_err(|e| io_error(dir, e))
}

/// Whether `file_name` is one of the temporary files [`create_temp`] makes for `name`:
/// `.<name>.<digits>.<digits>.tmp`.
fn is_temp_of(file_name: &OsStr, name: &OsStr) -> bool {
    let (Some(file_name), Some(name)) = (file_name.to_str(), name.to_str()) else {
        return false;
    };
    let Some(rest) = file_name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(name))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".tmp"))
    else {
        return false;
    };
    let mut parts = rest.split('.');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// Removes the temporary files of earlier saves to `dir/name` that no save holds locked: the
/// leftovers of interrupted ones. Best effort: a file that cannot be read, opened or
/// removed stays, and the save goes on.
fn remove_leftovers(dir: &Path, name: &OsStr) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !is_temp_of(&entry.file_name(), name) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        // held by a save in progress: not a leftover
        if file.try_lock().is_err() {
            continue;
        }
        let _ = fs::remove_file(&path);
    }
}

/// Creates `.<name>.<pid>.<n>.tmp` in `dir`, a name no other file has, and locks it. If a
/// concurrent save removed it as a leftover before the lock was taken, makes another.
fn create_temp(dir: &Path, name: OsString) -> Result<(PathBuf, File)> {
    let pid = std::process::id();
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = OsString::from(".");
        temp_name.push(&name);
        temp_name.push(format!(".{pid}.{n}.tmp"));
        let temp = dir.join(temp_name);
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => {
                file.lock().map_err(|source| Error::Io {
                    path: temp.clone(),
                    source,
                })?;
                if temp.exists() {
                    return Ok((temp, file));
                }
                // removed by another save's cleaning between creation and lock
                continue;
            }
            // left by a crashed process that had our pid: take the next number
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(Error::Io { path: temp, source }),
        }
    }
}

/// Flushes a directory's entries (the rename) to disk.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for flushing here; the rename is as durable as the system
/// makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory of this test's own under the system's temporary directory.
    fn scratch_dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("nanograd-atomic-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn temp_names_are_recognised_by_their_shape_only() {
        let is = |f: &str, n: &str| is_temp_of(OsStr::new(f), OsStr::new(n));
        assert!(is(".w.safetensors.123.0.tmp", "w.safetensors"));
        assert!(is(".ckpt.9.41.tmp", "ckpt"));
        // another target, a missing or non-numeric part, another suffix
        assert!(!is(".w.safetensors.123.0.tmp", "w"));
        assert!(!is(".ckpt.9.tmp", "ckpt"));
        assert!(!is(".ckpt.9.x.tmp", "ckpt"));
        assert!(!is(".ckpt.9.41.tmp.bak", "ckpt"));
        assert!(!is("ckpt.9.41.tmp", "ckpt"));
        assert!(!is(".ckpt.9.41.2.tmp", "ckpt"));
    }

    #[test]
    fn a_save_removes_the_leftovers_of_interrupted_saves_to_the_same_path() {
        let dir = scratch_dir("leftovers");
        let target = dir.join("w.safetensors");
        // what a process killed while saving leaves: its unlocked temporary file
        for (pid, n) in [(4_000_001, 0), (4_000_001, 1), (17, 5)] {
            fs::write(dir.join(format!(".w.safetensors.{pid}.{n}.tmp")), b"half").unwrap();
        }
        // files that are not this target's temporary files
        for other in [
            ".other.17.5.tmp",
            "w.safetensors.bak",
            ".w.safetensors.17.tmp",
        ] {
            fs::write(dir.join(other), b"keep").unwrap();
        }
        write_atomic(&target, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(
            names(&dir),
            [
                ".other.17.5.tmp",
                ".w.safetensors.17.tmp",
                "w.safetensors",
                "w.safetensors.bak"
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_save_in_progress_keeps_its_temporary_file() {
        let dir = scratch_dir("in-progress");
        let target = dir.join("ckpt");
        // another save, still writing: it holds the lock on its temporary file
        let busy = dir.join(".ckpt.4000002.0.tmp");
        let held = File::create(&busy).unwrap();
        held.lock().unwrap();
        write_atomic(&target, b"one").unwrap();
        assert!(busy.exists(), "a locked temporary file is not a leftover");
        // once that save is gone (its process died: the lock is released), the next save
        // cleans up
        drop(held);
        write_atomic(&target, b"two").unwrap();
        assert!(!busy.exists());
        assert_eq!(names(&dir), ["ckpt"]);
        assert_eq!(fs::read(&target).unwrap(), b"two");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_saves_to_one_path_all_succeed() {
        let dir = scratch_dir("concurrent");
        let target = dir.join("m.safetensors");
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let target = &target;
                s.spawn(move || {
                    for i in 0..25u8 {
                        write_atomic(target, &[t, i]).unwrap();
                    }
                });
            }
        });
        assert_eq!(fs::read(&target).unwrap()[1], 24);
        assert_eq!(names(&dir), ["m.safetensors"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
