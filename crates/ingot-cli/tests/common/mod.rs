//! Helpers shared by the CLI's tests: where the repository and the `ingot` binary are.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root: from the build's paths, or the working directory where the test
/// executables were carried to another machine (they run from the root there).
pub fn repo_root() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built.exists() {
        built
    } else {
        std::env::current_dir().unwrap()
    }
}

/// The CLI: this build's, else the one staged beside the carried tests (.device/bin).
pub fn exe() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_ingot"));
    if built.exists() {
        built
    } else {
        repo_root().join(".device/bin/ingot")
    }
}
