//! A step run once per item (`for-each=`): each item journaled with its own identity, so a re-run
//! runs again exactly the items that now resolve differently, and the emulator shows it.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test};
use crate::trust::account_names;

/// Two items whose names come from a script: `a`'s name follows the input `env`, `b`'s does not.
const TWO_ITEMS: &str = r#"# Two

```runbook
[inputs.env]
prompt = "env"
```

```aws organizations.ensure-organization id=org
```

```rhai id=n
#{ a: "acme-a-" + inputs.env, b: "acme-b-prod" }
```

```aws organizations.ensure-account id=accts for-each='["a", "b"]' timeout=60s
name = "${steps.n[item]}"
email = "aws+${steps.n[item]}@example.com"
```
"#;

#[test]
fn a_changed_item_runs_again_and_the_unchanged_one_does_not() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new().file("r.md", TWO_ITEMS).aws(&proxy.endpoint);
    let run = |env: &str| t.run_args(&["run".into(), "r.md".into(), "--input".into(), format!("env={env}")]);
    let first = run("one");
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(proxy.calls("CreateAccount"), 2, "{first:?}");
    // Item `a` resolves to another account now (same item, same key, another identity); `b` is
    // what it was.
    let second = run("two");
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(
        proxy.calls("CreateAccount"),
        3,
        "only the changed item created: {second:?}"
    );
    let names: Vec<String> = account_names(&moto.endpoint)
        .into_iter()
        .filter(|n| n.starts_with("acme-"))
        .collect();
    assert_eq!(names, ["acme-a-one", "acme-a-two", "acme-b-prod"], "{second:?}");
    assert!(second.stdout.contains("1 of 2 items were already done"), "{second:?}");
}
