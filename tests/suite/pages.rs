//! Reads by API name are read to their last page, as the SDK's paginators read them.

use crate::common::{Moto, Test};

/// Three assignments read one per page: the step sees all three (attacker finding, session 6:
/// the offboarding runbook read the first page of a user's assignments, removed those, and
/// deleted the user with the rest still assigned).
#[test]
fn a_read_by_name_is_read_to_its_last_page() {
    let moto = Moto::shared();
    let text = r#"# Pages

```aws sso-admin.find-instance id=ic
```

```aws identitystore.ensure-user id=user
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "paged"
display_name = "Paged"
given_name = "Pa"
family_name = "Ged"
email = "paged@example.com"
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "${steps.ic.instance_arn}"
name = "Paged"
```

```aws sso-admin.ensure-assignment id=assign
instance_arn = "${steps.ic.instance_arn}"
permission_set_arn = "${steps.ps.arn}"
principal_id = "${steps.user.user_id}"
account_ids = ["111111111111", "222222222222", "333333333333"]
```

```aws sso-admin:ListAccountAssignmentsForPrincipal id=listed
InstanceArn = "${steps.ic.instance_arn}"
PrincipalId = "${steps.user.user_id}"
PrincipalType = "USER"
MaxResults = 1
```

```rhai id=counted
let n = steps.listed.AccountAssignments.len();
if n != 3 { throw `read ${n} of 3 assignments`; }
if steps.listed.NextToken != () { throw "a page token was left"; }
#{ n: n }
```
"#;
    Test::new()
        .file("r.md", text)
        .aws(&moto.endpoint)
        .args(["run", "r.md"])
        .run()
        .code_is(0)
        .stdout_has("n=3");
}

/// IAM pages with `Marker` and `IsTruncated`: read to the end too.
#[test]
fn an_iam_read_by_name_follows_its_marker() {
    let moto = Moto::shared();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    crate::common::block_on(async {
        let iam = crate::common::sdk(&moto.endpoint).iam().await.expect("client");
        for name in ["paged-a", "paged-b", "paged-c"] {
            iam.create_role()
                .role_name(name)
                .assume_role_policy_document(trust)
                .send()
                .await
                .expect("role");
        }
    });
    let text = r#"# Pages

```aws iam:ListRoles id=listed
MaxItems = 1
```

```rhai id=counted
let n = steps.listed.Roles.len();
if n != 3 { throw `read ${n} of 3 roles`; }
if steps.listed.IsTruncated { throw "still truncated"; }
#{ n: n }
```
"#;
    Test::new()
        .file("r.md", text)
        .aws(&moto.endpoint)
        .args(["run", "r.md"])
        .run()
        .code_is(0)
        .stdout_has("n=3");
}

/// An endpoint that answers every request with `body`; returns its URL and how many it answered.
fn same_page_forever(body: &'static str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = answered.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (endpoint, answered)
}

/// An endpoint that answers every request with the same page and the same token: the read
/// fails instead of ending short (attacker finding, session 6: a repeated token ended the list,
/// and the offboarding runbook deleted a user with 13 of 20 assignments left).
#[test]
fn a_repeated_page_token_fails_the_read() {
    let (endpoint, answered) = same_page_forever(r#"{"Roots":[{"Id":"r-1","Name":"Root"}],"NextToken":"again"}"#);
    let text = r#"# Roots

```aws organizations:ListRoots id=roots
```
"#;
    Test::new()
        .file("r.md", text)
        .aws(&endpoint)
        .args(["run", "r.md"])
        .run()
        .code_is(1)
        .stderr_has("AWS repeated a page token");
    assert!(
        answered.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the first page and its repeat"
    );
}

/// The built-in actions read through the SDK's paginators, which stop silently on a repeated
/// token: that is an error too (attacker finding, session 6: ensure-account missed the account on
/// a later page and made a second one).
#[test]
fn a_repeated_page_token_fails_a_built_in_read() {
    let (endpoint, _) = same_page_forever(
        r#"{"Accounts":[{"Id":"111111111111","Name":"acme-a-prod","Email":"a@example.com","Status":"ACTIVE"}],"NextToken":"again"}"#,
    );
    let text = r#"# Accounts

```aws organizations.list-accounts id=all
```
"#;
    Test::new()
        .file("r.md", text)
        .aws(&endpoint)
        .args(["run", "r.md"])
        .run()
        .code_is(1)
        .stderr_has("AWS repeated a page token");
}
