//! The local AWS emulator behind `runbook rehearse`: moto server from PyPI, installed into a
//! virtualenv under the state directory the first time, started on a free loopback port and
//! stopped when the rehearsal ends.
//!
//! In front of moto sits a small answering layer of ours (the [`Account`] model), because moto
//! emulates AWS's APIs but not the account a brand-new operator has:
//!
//! - **the support plan.** moto answers the Support API on every account; AWS answers
//!   `SubscriptionRequiredException` on the Basic and Developer plans. The layer gives that
//!   answer, on the wire, so the support plugin takes the very path it takes at AWS. (A flag the
//!   plugin honoured in rehearsals only would rehearse a branch no real run takes, and could be
//!   set by mistake in a real one.)
//! - **who is calling.** moto says `user/moto` for any credentials; a new account has only its
//!   root user, so the layer answers GetCallerIdentity with the root user's ARN. The rehearsal signs
//!   with session credentials (`ASIA...`), as CloudShell gives, never with long-term keys.
//! - **root MFA.** moto always reports `AccountMFAEnabled = 0`; the layer reports what Part 1
//!   leaves behind (active) unless asked for an account without it.
//! - **permission set provisioning.** moto answers DescribePermissionSetProvisioningStatus with
//!   HTTP 500; the layer answers SUCCEEDED for the request asked about.
//! - **assignment creations in progress.** moto has no ListAccountAssignmentCreationStatus (HTTP
//!   500) and settles every creation at once; asked for the creations IN_PROGRESS, the layer
//!   answers none, which is moto's truth. (Other filters still go to moto.)
//!
//! Everything else goes to moto unchanged. The layer listens on loopback only.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// The moto release the rehearsal (and the test suite) is known to work with.
pub const MOTO: &str = "moto[server]==5.2.5";

/// The access key the rehearsal signs with: a session credential's (`ASIA`), as in CloudShell.
pub const ACCESS_KEY: &str = "ASIAREHEARSALROOT001";

/// An account's AWS Support plan, as chosen at sign-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SupportPlan {
    Basic,
    Developer,
    Business,
    EnterpriseOnRamp,
    Enterprise,
}

impl SupportPlan {
    /// Whether the plan includes the AWS Support API.
    pub fn has_api(self) -> bool {
        matches!(
            self,
            SupportPlan::Business | SupportPlan::EnterpriseOnRamp | SupportPlan::Enterprise
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            SupportPlan::Basic => "Basic",
            SupportPlan::Developer => "Developer",
            SupportPlan::Business => "Business",
            SupportPlan::EnterpriseOnRamp => "Enterprise On-Ramp",
            SupportPlan::Enterprise => "Enterprise",
        }
    }
}

/// The account a rehearsal emulates. The default is a brand-new account: its root user, no
/// organization, the Basic support plan; root MFA active (Part 1 done).
#[derive(Debug, Clone, Copy)]
pub struct Account {
    pub support_plan: SupportPlan,
    /// The account already manages an AWS organization (all features).
    pub organization: bool,
    pub root_mfa: bool,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            support_plan: SupportPlan::Basic,
            organization: false,
            root_mfa: true,
        }
    }
}

impl Account {
    /// One line for the operator: what the emulated account is.
    pub fn describe(&self) -> String {
        format!(
            "the emulated account: its root user (session credentials, as in AWS CloudShell), {}, the {} support plan ({}), root MFA {}",
            if self.organization {
                "managing an organization with all features"
            } else {
                "no organization yet"
            },
            self.support_plan.name(),
            if self.support_plan.has_api() {
                "the Support API answers"
            } else {
                "the Support API refuses"
            },
            if self.root_mfa { "active" } else { "not set up" }
        )
    }
}

pub struct Emulator {
    child: Child,
    layer: tokio::task::JoinHandle<()>,
    /// Where the SDK sends its calls: the answering layer in front of moto.
    pub endpoint: String,
}

impl Emulator {
    pub async fn stop(mut self) {
        self.layer.abort();
        let _ = self.child.kill().await;
    }
}

/// Why the emulator did not start; each says what to install or check.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot run {python} to create a virtualenv: {error}; install Python 3 with venv")]
    NoPython { python: String, error: std::io::Error },
    #[error("`{python} -m venv {}` failed; install Python 3 with venv (Debian: python3-venv)", venv.display())]
    Venv { python: String, venv: PathBuf },
    #[error("pip: {0}")]
    Pip(std::io::Error),
    #[error("pip install {MOTO} failed:\n{0}")]
    Install(String),
    #[error("no free loopback port: {0}")]
    Port(std::io::Error),
    #[error("cannot start {}: {error}", bin.display())]
    Spawn { bin: PathBuf, error: std::io::Error },
    #[error("moto_server exited with {0}")]
    Exited(std::process::ExitStatus),
    #[error("moto_server did not answer within 30s")]
    NoAnswer,
}

/// Finds `moto_server`: `$RUNBOOK_MOTO_SERVER`, the state directory's virtualenv, or a new one.
async fn moto_server(state_dir: &Path, say: &dyn Fn(&str)) -> Result<PathBuf, EmulatorError> {
    if let Some(p) = std::env::var_os("RUNBOOK_MOTO_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let venv = state_dir.join("emulator").join("venv");
    let bin = venv.join("bin").join("moto_server");
    if bin.exists() {
        return Ok(bin);
    }
    say(&format!(
        "installing the AWS emulator ({MOTO}) into {} (once; about half a minute)",
        venv.display()
    ));
    let python = std::env::var("RUNBOOK_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .await
        .map_err(|error| EmulatorError::NoPython {
            python: python.clone(),
            error,
        })?;
    if !status.success() {
        return Err(EmulatorError::Venv { python, venv });
    }
    let out = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", MOTO])
        .output()
        .await
        .map_err(EmulatorError::Pip)?;
    if !out.status.success() {
        return Err(EmulatorError::Install(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(bin)
}

fn free_port() -> Result<u16, EmulatorError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(EmulatorError::Port)?;
    l.local_addr().map(|a| a.port()).map_err(EmulatorError::Port)
}

/// Starts moto on loopback, waits until it answers, and puts the answering layer in front.
pub async fn start(state_dir: &Path, account: Account, say: &dyn Fn(&str)) -> Result<Emulator, EmulatorError> {
    let bin = moto_server(state_dir, say).await?;
    let mut last = EmulatorError::NoAnswer;
    for _ in 0..3 {
        let port = free_port()?;
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| EmulatorError::Spawn {
                bin: bin.clone(),
                error,
            })?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = child.try_wait() {
                last = EmulatorError::Exited(status);
                break;
            }
            if ready(port).await {
                let listener = TcpListener::bind("127.0.0.1:0").await.map_err(EmulatorError::Port)?;
                let endpoint = format!("http://{}", listener.local_addr().map_err(EmulatorError::Port)?);
                let layer = tokio::spawn(serve(listener, port, Arc::new(account)));
                return Ok(Emulator { child, layer, endpoint });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill().await;
    }
    Err(last)
}

async fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let req = format!("GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf).await, Ok(n) if n >= 12 && buf.starts_with(b"HTTP/1.") && &buf[9..12] == b"200")
}

/// Bounds on what the layer reads: AWS requests of these runbooks are a few KiB.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

async fn serve(listener: TcpListener, moto: u16, account: Arc<Account>) {
    while let Ok((conn, _)) = listener.accept().await {
        let account = account.clone();
        tokio::spawn(async move {
            let _ = connection(conn, moto, &account).await;
        });
    }
}

struct Request {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The operation: from `X-Amz-Target` (JSON protocols) or `Action=` (query protocol).
    fn operation(&self) -> String {
        if let Some(t) = self.header("x-amz-target") {
            return t.to_string();
        }
        String::from_utf8_lossy(&self.body)
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or("")
            .to_string()
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

async fn read_head<R: AsyncBufReadExt + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<String>>> {
    let mut head = Vec::new();
    let mut size = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        size += line.len();
        if size > MAX_HEAD {
            return Err(bad("request head too large"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if head.is_empty() {
                continue;
            }
            return Ok(Some(head));
        }
        head.push(line);
    }
}

fn content_length(head: &[String]) -> std::io::Result<Option<usize>> {
    for l in head.iter().skip(1) {
        if let Some((k, v)) = l.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            let n = v.trim().parse::<usize>().map_err(|_| bad("bad content-length"))?;
            if n > MAX_BODY {
                return Err(bad("body too large"));
            }
            return Ok(Some(n));
        }
    }
    Ok(None)
}

fn is_chunked(head: &[String]) -> bool {
    head.iter().skip(1).any(|l| {
        l.split_once(':')
            .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    })
}

async fn read_chunked<R: AsyncBufReadExt + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let mut t = String::new();
                if r.read_line(&mut t).await? == 0 || t.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).await?;
        let mut crlf = String::new();
        r.read_line(&mut crlf).await?;
    }
}

async fn connection(conn: TcpStream, moto: u16, account: &Account) -> std::io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut reader = BufReader::new(read);
    while let Some(head) = read_head(&mut reader).await? {
        let body = if is_chunked(&head) {
            read_chunked(&mut reader).await?
        } else {
            let mut b = vec![0; content_length(&head)?.unwrap_or(0)];
            reader.read_exact(&mut b).await?;
            b
        };
        let req = Request { head, body };
        let (status, headers, body) = match answer(&req, account) {
            Some(a) => a,
            None => {
                let (status, headers, body) = forward(moto, &req).await?;
                let body = rewrite(&req.operation(), body, account);
                (status, headers, body)
            }
        };
        let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in &headers {
            if ["content-length", "transfer-encoding", "connection"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
            {
                continue;
            }
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        write.write_all(out.as_bytes()).await?;
        write.write_all(&body).await?;
        write.flush().await?;
    }
    Ok(())
}

type Response = (String, Vec<(String, String)>, Vec<u8>);

fn json(status: &str, body: serde_json::Value, error: Option<&str>) -> Response {
    let mut headers = vec![
        ("Content-Type".to_string(), "application/x-amz-json-1.1".to_string()),
        ("x-amzn-RequestId".to_string(), "rehearsal-answering-layer".to_string()),
    ];
    if let Some(code) = error {
        headers.push(("x-amzn-ErrorType".to_string(), code.to_string()));
    }
    (status.to_string(), headers, body.to_string().into_bytes())
}

/// What the layer answers itself, before moto sees the request.
fn answer(req: &Request, account: &Account) -> Option<Response> {
    let op = req.operation();
    if op.starts_with("AWSSupport_") && !account.support_plan.has_api() {
        return Some(json(
            "400 Bad Request",
            serde_json::json!({
                "__type": "SubscriptionRequiredException",
                "message": "AWS Premium Support Subscription is required to use this service."
            }),
            Some("SubscriptionRequiredException"),
        ));
    }
    if op.ends_with(".ListAccountAssignmentCreationStatus") {
        let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        if v["Filter"]["Status"] == "IN_PROGRESS" {
            return Some(json(
                "200 OK",
                serde_json::json!({ "AccountAssignmentsCreationStatus": [] }),
                None,
            ));
        }
    }
    if op.ends_with(".DescribePermissionSetProvisioningStatus") {
        let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let id = v["ProvisionPermissionSetRequestId"].as_str().unwrap_or("");
        return Some(json(
            "200 OK",
            serde_json::json!({ "PermissionSetProvisioningStatus": { "RequestId": id, "Status": "SUCCEEDED" } }),
            None,
        ));
    }
    None
}

/// Replaces the text between `open` and `close` (the first occurrence).
fn replace_between(text: &mut String, open: &str, close: &str, value: &str) {
    if let Some(a) = text.find(open).map(|i| i + open.len())
        && let Some(b) = text[a..].find(close).map(|j| a + j)
    {
        text.replace_range(a..b, value);
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let a = text.find(open)? + open.len();
    let b = a + text[a..].find(close)?;
    Some(&text[a..b])
}

/// moto's answer, changed where the account differs from moto's.
fn rewrite(op: &str, body: Vec<u8>, account: &Account) -> Vec<u8> {
    match op {
        "GetCallerIdentity" => {
            let mut xml = String::from_utf8_lossy(&body).into_owned();
            let Some(acct) = between(&xml, "<Account>", "</Account>").map(String::from) else {
                return body;
            };
            // A role assumed in a member account is that role, not the root user.
            if xml.contains(":assumed-role/") {
                return body;
            }
            replace_between(&mut xml, "<Arn>", "</Arn>", &format!("arn:aws:iam::{acct}:root"));
            replace_between(&mut xml, "<UserId>", "</UserId>", &acct);
            xml.into_bytes()
        }
        "GetAccountSummary" if account.root_mfa => {
            let mut xml = String::from_utf8_lossy(&body).into_owned();
            if let Some(at) = xml.find("<key>AccountMFAEnabled</key>") {
                let mut rest = xml[at..].to_string();
                replace_between(&mut rest, "<value>", "</value>", "1");
                xml.replace_range(at.., &rest);
            }
            xml.into_bytes()
        }
        _ => body,
    }
}

async fn forward(moto: u16, req: &Request) -> std::io::Result<Response> {
    let mut up = TcpStream::connect(("127.0.0.1", moto)).await?;
    let mut out = String::new();
    let mut lines = req.head.iter();
    if let Some(first) = lines.next() {
        out.push_str(first);
        out.push_str("\r\n");
    }
    for h in lines {
        let lower = h.to_ascii_lowercase();
        if lower.starts_with("connection:")
            || lower.starts_with("transfer-encoding:")
            || lower.starts_with("content-length:")
        {
            continue;
        }
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        req.body.len()
    ));
    up.write_all(out.as_bytes()).await?;
    up.write_all(&req.body).await?;
    let mut reader = BufReader::new(up);
    let head = read_head(&mut reader)
        .await?
        .ok_or_else(|| bad("moto closed the connection"))?;
    let body = if is_chunked(&head) {
        read_chunked(&mut reader).await?
    } else if let Some(n) = content_length(&head)? {
        let mut b = vec![0; n];
        reader.read_exact(&mut b).await?;
        b
    } else {
        let mut b = Vec::new();
        reader.take(MAX_BODY as u64).read_to_end(&mut b).await?;
        b
    };
    let status = head
        .first()
        .and_then(|l| l.split_once(' '))
        .map_or("502 Bad Gateway", |(_, s)| s)
        .to_string();
    let headers = head
        .iter()
        .skip(1)
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok((status, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_becomes_the_root_user() {
        let xml = "<GetCallerIdentityResponse><GetCallerIdentityResult><UserId>AKIAIOSFODNN7EXAMPLE</UserId><Account>123456789012</Account><Arn>arn:aws:sts::123456789012:user/moto</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>";
        let out = String::from_utf8(rewrite("GetCallerIdentity", xml.into(), &Account::default())).expect("utf8");
        assert!(out.contains("<Arn>arn:aws:iam::123456789012:root</Arn>"), "{out}");
        assert!(out.contains("<UserId>123456789012</UserId>"), "{out}");
    }

    #[test]
    fn root_mfa_is_reported_as_the_account_says() {
        let xml = "<SummaryMap><entry><key>Users</key><value>0</value></entry><entry><key>AccountMFAEnabled</key><value>0</value></entry></SummaryMap>";
        let on = String::from_utf8(rewrite("GetAccountSummary", xml.into(), &Account::default())).expect("utf8");
        assert!(on.contains("<key>AccountMFAEnabled</key><value>1</value>"), "{on}");
        assert!(on.contains("<key>Users</key><value>0</value>"), "{on}");
        let off = Account {
            root_mfa: false,
            ..Account::default()
        };
        let same = String::from_utf8(rewrite("GetAccountSummary", xml.into(), &off)).expect("utf8");
        assert_eq!(same, xml);
    }

    #[test]
    fn no_assignment_creation_is_in_progress_at_moto() {
        let req = |filter: &str| Request {
            head: vec![
                "POST / HTTP/1.1".into(),
                "X-Amz-Target: SWBExternalService.ListAccountAssignmentCreationStatus".into(),
            ],
            body: format!(r#"{{"InstanceArn":"arn:aws:sso:::instance/ssoins-1","Filter":{{"Status":"{filter}"}}}}"#)
                .into_bytes(),
        };
        let (status, _, body) = answer(&req("IN_PROGRESS"), &Account::default()).expect("answered");
        assert!(status.starts_with("200"), "{status}");
        assert_eq!(body, br#"{"AccountAssignmentsCreationStatus":[]}"#);
        assert!(
            answer(&req("FAILED"), &Account::default()).is_none(),
            "moto's to answer"
        );
    }

    #[test]
    fn plans_without_the_support_api_refuse_it() {
        let req = Request {
            head: vec![
                "POST / HTTP/1.1".into(),
                "X-Amz-Target: AWSSupport_20130415.DescribeCases".into(),
            ],
            body: b"{}".to_vec(),
        };
        for plan in [SupportPlan::Basic, SupportPlan::Developer] {
            let acct = Account {
                support_plan: plan,
                ..Account::default()
            };
            let (status, _, body) = answer(&req, &acct).expect("answered");
            assert!(status.starts_with("400"));
            assert!(String::from_utf8_lossy(&body).contains("SubscriptionRequiredException"));
        }
        let business = Account {
            support_plan: SupportPlan::Business,
            ..Account::default()
        };
        assert!(answer(&req, &business).is_none(), "forwarded to moto");
    }
}
