//! Command-line arguments shared by the benchmark binaries.

/// The argument after `name` (`--json FILE` gives FILE), if both are there.
pub fn value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}
