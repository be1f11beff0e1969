//! Atomic file replacement: [`write_atomic`] writes a temporary file in the target's
//! directory, flushes it to disk (`fsync`), renames it over the target and flushes the
//! directory. A reader sees the old file or the new one, never a mix; a save that fails or
//! is interrupted midway leaves the old file as it was.
//!
//! The temporary file is `.<name>.<pid>.<n>.tmp` beside the target. On an error it is
//! removed; if the process dies while writing it, it stays behind (a hidden file, harmless,
//! never read) and the target is intact.

use std::ffi::OsString;
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
    let (temp, mut file) = create_temp(dir, name.to_os_string())?;
    let written = write(&mut file).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error(&temp, e));
    }
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(io_error(path, e));
    }
    sync_dir(dir).map_err(|e| io_error(dir, e))
}

/// Creates `.<name>.<pid>.<n>.tmp` in `dir`, a name no other file has.
fn create_temp(dir: &Path, name: OsString) -> Result<(PathBuf, File)> {
    let pid = std::process::id();
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = OsString::from(".");
        temp_name.push(&name);
        temp_name.push(format!(".{pid}.{n}.tmp"));
        let temp = dir.join(temp_name);
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
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
