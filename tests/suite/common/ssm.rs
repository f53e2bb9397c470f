//! The SSM export's tools: `runbook export --ssm` of a bundled runbook, and the node packages of
//! tests/ssm (AWS's schema for Automation documents, cdk-ssm-documents' simulator), installed with
//! `npm ci` on first use as the harness installs moto; the simulated scripts run under the
//! suite's virtualenv, whose moto brings boto3.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{Output, Test, moto_server, repo};

/// tests/ssm with its node packages, installed on first use (under a lock: tests run in
/// parallel), as the harness installs moto. Without node the test fails saying what to install:
/// nothing is skipped.
pub fn node_tools() -> PathBuf {
    let dir = repo().join("tests").join("ssm");
    let ready = |d: &Path| d.join("node_modules/@cdklabs/cdk-ssm-documents/package.json").exists();
    if ready(&dir) {
        return dir;
    }
    let have_npm = Command::new("npm")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have_npm,
        "the SSM export tests need Node 20 and npm (scripts/test says how to install them)"
    );
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(repo().join(".npm.lock"))
        .expect("lock file");
    fs4::fs_std::FileExt::lock_exclusive(&lock).expect("lock");
    if !ready(&dir) {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm")
            .success();
        assert!(ok, "npm ci in tests/ssm failed");
    }
    dir
}

/// Exports a runbook into `out`; returns the command's output.
pub fn export(t: &Test, runbook: &str, skips: &[&str], out: &Path, extra: &[&str]) -> Output {
    let src = repo().join("runbooks").join(runbook);
    let mut args = vec![
        "export".to_string(),
        "--ssm".into(),
        src.display().to_string(),
        "-o".into(),
        out.display().to_string(),
    ];
    for s in skips {
        args.push("--skip".into());
        args.push((*s).into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    t.run_args(&args)
}

/// Runs `node` in `dir` with the virtualenv first on PATH (its python has boto3): exit code,
/// stdout, stderr.
pub fn node(dir: &Path, args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let venv_bin = moto_server().parent().expect("venv bin").to_path_buf();
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("node");
    cmd.args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("AWS_PROFILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs an exported document in the simulator against `endpoint`: its exit code and output,
/// whether it succeeded or not.
pub fn simulation(tools: &Path, doc: &Path, endpoint: &str, params: &Value) -> (i32, String, String) {
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_SESSION_TOKEN", "testing".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
    ];
    let docs = doc.display().to_string();
    node(tools, &["simulate.js", &docs, &params.to_string()], &env)
}

/// Runs an exported document in the simulator against `endpoint`, which must succeed.
pub fn simulate(tools: &Path, doc: &Path, endpoint: &str, params: &Value) -> Value {
    let (code, stdout, stderr) = simulation(tools, doc, endpoint, params);
    let last = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("{}");
    let v: Value = serde_json::from_str(last).unwrap_or(Value::Null);
    assert_eq!(
        code, 0,
        "the simulation failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        v["stackTrace"]
    );
    v
}
