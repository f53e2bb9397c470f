//! The step interpreter's edges: flags are checked before the journal opens, `--restart` starts
//! every step and item over, and what a run reports matches what it did (issue 27).

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{Moto, Test, block_on, sdk};

/// Every file under a directory, by path, with its bytes: a usage error must leave it as it was.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.insert(format!("{}/", p.display()), Vec::new());
                stack.push(p);
            } else {
                out.insert(p.display().to_string(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

const SCRIPTED: &str = r#"# Scripted

```runbook
[inputs.who]
prompt = "Who"
pattern = "^[a-z]+$"
```

```rhai id=first
#{ greeting: "hello " + inputs.who }
```

```manual id=ask
confirm = "Done?"
```
"#;

#[test]
fn a_usage_error_after_a_finished_run_leaves_the_state_directory_as_it_was() {
    let t = Test::new()
        .file("r.md", SCRIPTED)
        .file(
            "answers.toml",
            r#"[inputs]
who = "ann"
[steps.ask]
confirm = true
"#,
        )
        .file(
            "bad-step.toml",
            r#"[steps.nosuch]
confirm = true
"#,
        )
        .file(
            "bad-ask.toml",
            r#"[steps.ask]
confirm = "yes"
"#,
        );
    t.run_args(&["run".into(), "r.md".into(), "--answers".into(), "answers.toml".into()])
        .code_is(0);
    let state = t.path(".runbook");
    let before = snapshot(&state);
    assert!(before.keys().any(|k| k.ends_with("state.json")), "{before:?}");
    for args in [
        vec!["--answers", "answers.toml", "--from", "nosuch"],
        vec!["--answers", "answers.toml", "--only", "nosuch"],
        vec!["--answers", "answers.toml", "--input", "nobody=1"],
        vec!["--answers", "answers.toml", "--input", "who=NOT-LOWER"],
        vec!["--answers", "bad-step.toml"],
        vec!["--answers", "bad-ask.toml"],
        vec!["--answers", "missing.toml"],
    ] {
        let mut all = vec!["run".to_string(), "r.md".to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let out = t.run_args(&all);
        out.code_is(2);
        assert_eq!(
            snapshot(&state),
            before,
            "{args:?} changed the state directory\n{out:?}"
        );
    }
}

const USERS: &str = r#"# Users

```aws sso-admin.find-instance id=ic
```

```aws identitystore.ensure-user id=users for-each='["ann", "bob", "cyd"]'
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "${item}"
display_name = "${item}"
given_name = "${item}"
family_name = "Test"
email = "${item}@example.com"
```
"#;

fn delete_user(endpoint: &str, name: &str) {
    block_on(async {
        let ctx = sdk(endpoint);
        let store = crate::common::instance(&ctx).await.store;
        let ids = ctx.identitystore(None).await.expect("client");
        let users = ids.list_users().identity_store_id(&store).send().await.expect("users");
        let id = users
            .users()
            .iter()
            .find(|u| u.user_name() == Some(name))
            .map(|u| u.user_id().to_string())
            .expect("the user exists");
        ids.delete_user()
            .identity_store_id(&store)
            .user_id(&id)
            .send()
            .await
            .expect("delete");
    });
}

fn user_exists(endpoint: &str, name: &str) -> bool {
    block_on(async {
        let ctx = sdk(endpoint);
        let store = crate::common::instance(&ctx).await.store;
        let ids = ctx.identitystore(None).await.expect("client");
        let users = ids.list_users().identity_store_id(&store).send().await.expect("users");
        users.users().iter().any(|u| u.user_name() == Some(name))
    })
}

#[test]
fn restart_runs_every_item_again() {
    let moto = Moto::shared();
    let t = Test::new().file("users.md", USERS).aws(&moto.endpoint);
    t.run_args(&["run".into(), "users.md".into()]).code_is(0);
    delete_user(&moto.endpoint, "bob");
    assert!(!user_exists(&moto.endpoint, "bob"));
    let again = t.run_args(&["run".into(), "users.md".into(), "--restart".into()]);
    again.code_is(0).stdout_lacks("were already done");
    assert!(user_exists(&moto.endpoint, "bob"), "bob is back\n{again:?}");
}
