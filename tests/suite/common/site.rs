//! Scratch books for the site's tests (`site.rs`, `site_bounds.rs`): a minimal project, and the
//! files a render wrote.

use std::path::{Path, PathBuf};

use super::Test;

/// A scratch project: a minimal book and one runbook `runbooks/r.md`.
pub fn project(runbook: &str) -> Test {
    Test::new()
        .file("book/book.toml", "[book]\ntitle = \"t\"\n")
        .file("book/src/SUMMARY.md", "# Summary\n\n<!-- runbooks -->\n")
        .file("runbooks/r.md", runbook)
}

/// A file's text; a failure names the file.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every regular file under `dir` (links not followed), as (path, bytes).
pub fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(ty) = e.file_type() else { continue };
            if ty.is_dir() {
                todo.push(e.path());
            } else if ty.is_file() {
                out.push((e.path(), std::fs::read(e.path()).expect("read")));
            }
        }
    }
    out
}

/// A `render --serve` process and the port it printed; killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `render --serve 127.0.0.1:0` in `t`'s directory, closing idle connections after `idle_ms`.
pub fn serve(t: &Test, idle_ms: u64) -> Served {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["render", "--serve", "127.0.0.1:0"])
        .current_dir(t.dir.path())
        .env("RUNBOOK_SERVE_TIMEOUT_MS", idle_ms.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("serve line");
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Served { child, port }
}
