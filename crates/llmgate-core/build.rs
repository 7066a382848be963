//! With the `tiktoken` feature: the rank tables `src/bpe.rs` counts with, written into `OUT_DIR`
//! from the vendored rank files (`data/*.tiktoken`) in the layout of `src/bpe/layout.rs`.

use std::path::Path;

use base64::Engine as _;

#[path = "src/bpe/layout.rs"]
mod layout;

const ENCODINGS: [&str; 2] = ["o200k_base", "cl100k_base"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=src/bpe/layout.rs");
    if std::env::var_os("CARGO_FEATURE_TIKTOKEN").is_none() {
        return Ok(());
    }
    let out = std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?;
    for name in ENCODINGS {
        let source = format!("data/{name}.tiktoken");
        println!("cargo::rerun-if-changed={source}");
        let text = std::fs::read_to_string(&source)?;
        let mut tokens = Vec::new();
        for (line_no, line) in text.lines().enumerate() {
            let (token, rank) = line
                .split_once(' ')
                .ok_or(format!("{source}:{}", line_no + 1))?;
            // Ranks run 0, 1, 2, ... in the files: a token's rank is its index in the table.
            if rank.parse::<usize>()? != tokens.len() {
                return Err(format!("{source}:{}: rank {rank} out of order", line_no + 1).into());
            }
            tokens.push(base64::engine::general_purpose::STANDARD.decode(token)?);
        }
        let table = layout::write(&tokens).ok_or(format!("{source}: too many tokens"))?;
        std::fs::write(Path::new(&out).join(format!("{name}.ranks")), table)?;
    }
    Ok(())
}
