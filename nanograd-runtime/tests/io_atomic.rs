//! Atomic file replacement: a save that fails or crashes midway leaves the previous file
//! intact; readers only ever see a whole file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use nanograd_runtime::io::{write_atomic, write_atomic_with};
use nanograd_runtime::Error;

/// A fresh directory under target/ for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("io_atomic_{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn replaces_the_file_and_leaves_nothing_else() {
    let dir = scratch_dir("replace");
    let path = dir.join("weights.bin");
    write_atomic(&path, b"first").unwrap();
    write_atomic(&path, b"second, longer").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
    assert_eq!(listing(&dir), ["weights.bin"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A writer that fails after writing half of the new contents: the error is returned, the
/// previous file is as it was, and the temporary file is gone.
#[test]
fn a_save_failing_midway_leaves_the_previous_file_and_no_temporary() {
    let dir = scratch_dir("fail");
    let path = dir.join("run.ckpt");
    write_atomic(&path, b"previous checkpoint").unwrap();
    let new = [7u8; 4096];
    let err = write_atomic_with(&path, |file| {
        file.write_all(&new[..2048])?;
        Err(std::io::Error::other("disk full (simulated)"))
    })
    .unwrap_err();
    let Error::Io { path: at, .. } = &err else {
        panic!("not an I/O error: {err}")
    };
    let temp = at.file_name().unwrap().to_string_lossy();
    assert!(
        temp.starts_with(".run.ckpt.") && temp.ends_with(".tmp"),
        "{temp}"
    );
    assert!(
        err.to_string().ends_with(": disk full (simulated)"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"previous checkpoint");
    assert_eq!(listing(&dir), ["run.ckpt"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The environment variable that makes [`crash_midway_child`] run.
const CRASH_DIR: &str = "NANOGRAD_IO_ATOMIC_CRASH_DIR";

/// A real crash: a child process (this test binary) starts replacing the file and aborts
/// after writing half of it. The previous file is intact; the half-written temporary file
/// stays behind, hidden, and a later save succeeds beside it.
#[test]
fn a_crash_midway_leaves_the_previous_file_intact() {
    let dir = scratch_dir("crash");
    let path = dir.join("run.ckpt");
    write_atomic(&path, b"previous checkpoint").unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_midway_child", "--ignored", "--nocapture"])
        .env(CRASH_DIR, &dir)
        .output()
        .unwrap();
    assert!(!child.status.success(), "the child should have aborted");
    assert_eq!(std::fs::read(&path).unwrap(), b"previous checkpoint");
    let names = listing(&dir);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with(".run.ckpt.") && names[0].ends_with(".tmp"));
    assert_eq!(std::fs::read(dir.join(&names[0])).unwrap(), [9u8; 1000]);
    write_atomic(&path, b"next checkpoint").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"next checkpoint");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Run by [`a_crash_midway_leaves_the_previous_file_intact`] in a child process; does
/// nothing when run otherwise.
#[test]
#[ignore = "the crashing child of a_crash_midway_leaves_the_previous_file_intact"]
fn crash_midway_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR).map(PathBuf::from) else {
        return;
    };
    let _ = write_atomic_with(dir.join("run.ckpt"), |file| {
        file.write_all(&[9u8; 1000])?;
        file.sync_all()?;
        std::process::abort()
    });
}

/// Writers racing to replace one file while a reader reads it: the reader only ever sees
/// one writer's whole contents, and so does the file at the end.
#[test]
fn readers_see_whole_files_only() {
    let dir = scratch_dir("race");
    let path = dir.join("w.bin");
    let contents: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 10_000 + usize::from(i)]).collect();
    write_atomic(&path, &contents[0]).unwrap();
    std::thread::scope(|s| {
        for c in &contents {
            let path = &path;
            s.spawn(move || {
                for _ in 0..20 {
                    write_atomic(path, c).unwrap();
                }
            });
        }
        s.spawn(|| {
            for _ in 0..200 {
                let seen = std::fs::read(&path).unwrap();
                assert!(
                    contents.contains(&seen),
                    "a partial file of {} bytes",
                    seen.len()
                );
            }
        });
    });
    assert!(contents.contains(&std::fs::read(&path).unwrap()));
    assert_eq!(listing(&dir), ["w.bin"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_directory_or_a_path_without_a_file_name_is_an_error() {
    let dir = scratch_dir("missing");
    let err = write_atomic(dir.join("no/such/dir/w.bin"), b"x").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir/.w.bin."), "{err}");
    assert_eq!(listing(&dir), Vec::<String>::new());
    let err = write_atomic(dir.join(".."), b"x").unwrap_err();
    assert!(err.to_string().ends_with("` does not name a file"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
