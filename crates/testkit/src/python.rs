//! The Python virtualenv with the official `openai` and `anthropic` SDKs, created on first use
//! under `target/sdk-venv` (a fresh machine needs only Python 3 and access to PyPI). A lock file
//! keeps parallel tests from building it twice.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The SDK versions the tests pin, so a new release cannot change results silently.
const PACKAGES: [&str; 2] = ["openai==3.57.0", "anthropic==2.13.0"];

/// Path of the venv's python, creating the venv if needed.
///
/// # Errors
/// When Python or pip fail; the message includes their output.
pub fn sdk_python() -> anyhow::Result<PathBuf> {
    let root = workspace_target().join("sdk-venv");
    let python = root.join("bin").join("python");
    let marker = root.join(".ready");
    if marker.exists() {
        return Ok(python);
    }
    std::fs::create_dir_all(workspace_target())?;
    let lock_path = workspace_target().join("sdk-venv.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    lock.lock()?;
    if marker.exists() {
        return Ok(python);
    }
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&py).arg("-m").arg("venv").arg(&root))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES))?;
    std::fs::write(&marker, PACKAGES.join("\n"))?;
    Ok(python)
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        anyhow::bail!(
            "{cmd:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `<workspace>/target`, from this crate's manifest directory.
fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Runs a Python script with the SDK venv and returns its stdout.
///
/// # Errors
/// When the script fails; the message includes stderr.
pub fn run_script(script: &str, env: &[(&str, &str)]) -> anyhow::Result<String> {
    let python = sdk_python()?;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .envs(env.iter().copied())
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "python failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
