//! Compiles every `.proto` under `proto/switchyard/v1` with protox (pure Rust, so a fresh
//! machine needs no protoc) and tonic-prost-build. New schemas need no edit here: the directory
//! is globbed.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    // compile_fds() does not emit this itself; without it proto edits would not rebuild.
    println!("cargo:rerun-if-changed=../../proto");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("switchyard/v1"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    // A stable order keeps the generated file byte-identical between builds.
    files.sort();
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
