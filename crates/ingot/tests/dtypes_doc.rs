//! docs/dtypes.md holds the promotion table; this test keeps it equal to `promote_types`.

use ingot::{promote_types, DType};
use std::path::PathBuf;

/// The repository root: tests may run from it (GPU machine) or from the crate (cargo).
fn repo_file(rel: &str) -> PathBuf {
    let mut dir = std::env::current_dir().unwrap();
    loop {
        let p = dir.join(rel);
        if p.exists() {
            return p;
        }
        if !dir.pop() {
            return PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
        }
    }
}

#[test]
fn promotion_table_in_docs_matches_code() {
    let doc = std::fs::read_to_string(repo_file("docs/dtypes.md")).unwrap();
    let short = |s: &str| match s {
        "b" => DType::Bool,
        other => DType::from_name(other).unwrap_or_else(|| panic!("unknown dtype {other}")),
    };
    let mut header: Vec<DType> = Vec::new();
    let mut rows = 0;
    for line in doc.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(|c| c.trim()).collect();
        if line.starts_with("| | b |") {
            header = cells[1..].iter().map(|c| short(c)).collect();
        } else if line.starts_with("| **") && !header.is_empty() {
            let a = short(cells[0].trim_matches('*'));
            for (b, cell) in header.iter().zip(&cells[1..]) {
                assert_eq!(promote_types(a, *b), short(cell), "docs/dtypes.md: {a} with {b}");
            }
            rows += 1;
        }
    }
    assert_eq!(rows, 14, "the table has a row per dtype");
}
