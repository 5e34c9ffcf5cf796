//! Section 2: the size of each function's zip from `make build ARCH=x86-64`.

use std::fmt::Write as _;

use super::{release_dir, verdict, FUNCTIONS};

/// 2. Package sizes from `make build ARCH=x86-64`.
pub(super) fn package_sizes(md: &mut String) {
    writeln!(md, "## 2. Package size\n\nEach zip from `make build ARCH=x86-64`. Target ≤ 8 MB.\n\n| function | zip | verdict |\n|---|---|---|").ok();
    for f in FUNCTIONS {
        // Where `make build` puts them: $(CARGO_TARGET_DIR)/lambda.
        let zip = release_dir()
            .with_file_name("lambda")
            .join(f)
            .join("bootstrap.zip");
        match std::fs::metadata(&zip) {
            Ok(m) => {
                let mb = m.len() as f64 / 1_000_000.0;
                writeln!(md, "| {f} | {mb:.2} MB | {} |", verdict(mb <= 8.0)).ok();
            }
            Err(_) => {
                writeln!(md, "| {f} | not built (run `make build ARCH=x86-64`) | - |").ok();
            }
        }
    }
    writeln!(md).ok();
}
