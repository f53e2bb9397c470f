//! Credentials errors that teach (issue #31, finding 11; issue #32): no credentials, a credential
//! chain that errors (an instance metadata endpoint that answers 403), an expired SSO session,
//! and an answer the SDK cannot read, each one located line that says what happened and how to
//! get credentials, never the SDK's debug dump; the troubleshooting hand-over works without
//! credentials; `plan` after a rehearsal says it reads real AWS.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::common::{Output, Test, repo};

fn runbook(name: &str) -> String {
    repo().join("runbooks").join(name).display().to_string()
}

fn answers(name: &str) -> String {
    repo().join("runbooks/rehearsal").join(name).display().to_string()
}

/// A run with no credentials anywhere: no keys, no profile, no instance metadata.
fn bare() -> Test {
    Test::new()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .unset("AWS_ACCESS_KEY_ID")
        .unset("AWS_SECRET_ACCESS_KEY")
        .unset("AWS_SESSION_TOKEN")
        .unset("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .unset("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .unset("AWS_WEB_IDENTITY_TOKEN_FILE")
        .unset("AWS_ROLE_ARN")
        .unset("AWS_CONFIG_FILE")
        .unset("AWS_SHARED_CREDENTIALS_FILE")
}

/// A loopback HTTP server that answers every request with `answer` (a whole HTTP response).
fn answering(answer: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 8192];
            let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(500)));
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    format!("http://{addr}")
}

/// What every credentials error must be: located, one message, the ways to credentials, no dump.
fn teaches(out: &Output, rb: &str, line: &str) {
    out.code_is(1);
    assert!(
        out.stderr.contains(&format!("{rb}:{line}: error: step `")),
        "located: {out:?}"
    );
    for way in [
        "AWS CloudShell",
        "signed in as the root user",
        "--profile NAME",
        "aws configure sso",
    ] {
        assert!(out.stderr.contains(way), "{way}: {out:?}");
    }
    for dump in [
        "ProviderError",
        "SdkBody",
        "HeaderValue",
        "Extensions",
        " { ",
        "DispatchFailure(",
    ] {
        assert!(!out.all().contains(dump), "no debug dump ({dump}): {out:?}");
    }
}

#[test]
fn no_credentials_say_where_to_get_them() {
    let rb = runbook("users-and-credentials.md");
    let out = bare().run_args(&["run".into(), rb.clone()]);
    teaches(&out, &rb, "124:1");
    out.stderr_has("step `whoami` failed: no AWS credentials found");
}

#[test]
fn a_credential_chain_that_errors_is_one_line_and_the_hand_over_still_works() {
    let imds = answering("HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nConnection: close\r\n\r\nForbidden");
    let t = bare()
        .env("AWS_EC2_METADATA_DISABLED", "false")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds);
    let rb = runbook("users-and-credentials.md");
    let out = t.run_args(&["run".into(), rb.clone()]);
    teaches(&out, &rb, "124:1");
    out.stderr_has("the AWS credentials could not be loaded: failed to load IMDS session token");
    // Through the first identity check of an action, and through an AWS call itself (the SDK
    // reports a credentials failure inside its own error).
    let rb = runbook("prerequisites.md");
    let out = t.run_args(&[
        "run".into(),
        rb.clone(),
        "--answers".into(),
        answers("prerequisites.toml"),
    ]);
    teaches(&out, &rb, "115:1");
    let out = t.run_args(&[
        "run".into(),
        rb.clone(),
        "--answers".into(),
        answers("prerequisites.toml"),
        "--only".into(),
        "role-quota".into(),
    ]);
    teaches(&out, &rb, "130:1");
    out.stderr_has("step `role-quota` failed: the AWS credentials could not be loaded");

    // The troubleshooting hand-over works without credentials, as credentials.md promises.
    let out = t.run_args(&[
        "run".into(),
        runbook("troubleshooting/failed-attempts.md"),
        "--answers".into(),
        answers("failed-attempts.toml"),
    ]);
    out.code_is(0).stdout_has("handed_over=true reason=no-credentials");
    assert!(!out.all().contains("ProviderError"), "{out:?}");
    assert!(t.written().contains("# Support case to open by hand"), "{out:?}");
}

#[test]
fn an_expired_sso_session_says_to_sign_in_again() {
    // The SDK's cache file of an sso-session is named by the SHA-1 of the session's name.
    let cache = ".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json";
    let t = bare()
        .file(
            ".aws/config",
            r#"[profile admin]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = AdministratorAccess
region = us-east-1

[sso-session corp]
sso_start_url = https://d-1234567890.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access
"#,
        )
        .file(
            cache,
            r#"{"startUrl":"https://d-1234567890.awsapps.com/start","region":"us-east-1","accessToken":"expired","expiresAt":"2020-01-01T00:00:00Z"}"#,
        );
    let rb = runbook("users-and-credentials.md");
    let out = t.run_args(&["run".into(), rb.clone(), "--profile".into(), "admin".into()]);
    out.code_is(1)
        .stderr_has("the IAM Identity Center (SSO) session of profile `admin` has expired")
        .stderr_has("`aws sso login --profile admin`");
    assert!(!out.all().contains("ProviderError"), "{out:?}");
}

/// An answer AWS (or whatever answers in its place) sends in a shape the SDK cannot parse is one
/// line: the operation, the HTTP status and the start of the body (issue #32).
#[test]
fn an_answer_the_sdk_cannot_read_is_one_line() {
    let endpoint = answering(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: 60\r\nConnection: close\r\n\r\n<html><body><h1>Proxy error</h1>upstream failed</body></html>",
    );
    let t = Test::new().aws(&endpoint).env("AWS_MAX_ATTEMPTS", "1");
    let out = t.run_args(&[
        "run".into(),
        runbook("prerequisites.md"),
        "--answers".into(),
        answers("prerequisites.toml"),
    ]);
    // STS is asked first (who is calling), and its unreadable answer stops the run before any
    // step: one line naming the call.
    out.code_is(1);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("cannot tell which account the credentials are for"))
        .unwrap_or_default();
    assert!(
        line.contains("sts:GetCallerIdentity failed: HttpStatus500: HTTP 500, an answer the SDK could not read: <html><body><h1>Proxy error</h1>"),
        "{out:?}"
    );
    for dump in ["Response {", "SdkBody", "HeaderValue", "unhandled"] {
        assert!(!out.all().contains(dump), "{dump}: {out:?}");
    }
}

/// After a rehearsal, `plan` says that it reads real AWS: the rehearsal's record is not what it
/// plans from.
#[test]
fn plan_after_a_rehearsal_says_it_reads_real_aws() {
    let t = Test::new().env(
        "RUNBOOK_MOTO_SERVER",
        &crate::common::moto_server().display().to_string(),
    );
    let rb = runbook("users-and-credentials.md");
    t.run_args(&["rehearse".into(), rb.clone()]).code_is(0);
    let plan =
        t.env("AWS_EC2_METADATA_DISABLED", "true")
            .run_args(&["plan".into(), rb, "--profile".into(), "prod".into()]);
    plan.stderr_has("plan: this runbook has only been rehearsed (against an emulator, gone since); this plan reads real AWS, with profile prod");
}
