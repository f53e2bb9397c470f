//! `runbook check` on step bodies: parameters against each action's schema, actions by name,
//! references to inputs and to earlier steps' outputs. Each test compares the whole of stderr
//! (located line, source, caret, help and the closing count), as just's tests do.

use crate::check::check;
use crate::common::{Moto, Test};

#[test]
fn bad_toml_value_on_a_body_line() {
    check(
        r#"# T

```aws iam.check-role-quota

min_free = 1x
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:5:12: error: invalid TOML: string values must be quoted, expected literal string
  |
5 | min_free = 1x
  |            ^^
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn unknown_parameter_key() {
    check(
        r#"# T

```aws iam.check-role-quota
min_fre = 3
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:4:1: error: unknown parameter `min_fre` for `iam.check-role-quota`
  |
4 | min_fre = 3
  | ^^^^^^^
  = help: did you mean `min_free`?
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn rhai_syntax_error_on_the_third_line_of_a_block() {
    check(
        r#"# T

## Compute

```rhai
let a = 1;
let b = 2;
let c = a +* b;
#{ c: c }
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:8:12: error: Rhai: Unexpected '*'
  |
8 | let c = a +* b;
  |            ^
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn undefined_step_output_reference() {
    check(
        r#"# T

```manual id=portal
instructions = "Open ${steps.x.url}"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:4:24: error: no step `x` in this runbook
  |
4 | instructions = "Open ${steps.x.url}"
  |                        ^^^^^^^^^^^
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn unknown_action_suggests_the_closest() {
    check(
        r#"# T

```aws sts.whoamy
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:8: error: unknown aws action `sts.whoamy`
  |
3 | ```aws sts.whoamy
  |        ^^^^^^^^^^
  = help: did you mean `sts.whoami`?
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

/// A name whose verb takes something away is never "corrected" to one that adds it.
#[test]
fn suggestions_never_offer_the_opposite_effect() {
    // By edit distance `identitystore.ensure-user` (5) is nearer to `disable-user` than
    // `identitystore.remove-user` (6), and was the one offered.
    check(
        r#"# T

```aws identitystore.disable-user id=d
user_name = "x"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:8: error: unknown aws action `identitystore.disable-user`
  |
3 | ```aws identitystore.disable-user id=d
  |        ^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: did you mean `identitystore.remove-user`?
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
    // The same distance in the same direction is still offered.
    check(
        r#"# T

```aws identitystore.ensure-usr id=d
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:8: error: unknown aws action `identitystore.ensure-usr`
  |
3 | ```aws identitystore.ensure-usr id=d
  |        ^^^^^^^^^^^^^^^^^^^^^^^^
  = help: did you mean `identitystore.ensure-user`?
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

/// Typed strings are checked at `check`, located at the value, with examples: a session length
/// AWS would reject (or moto accept) and a time limit without a unit.
#[test]
fn durations_are_typed_parameters() {
    check(
        r#"# T

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "arn"
name = "Admin"
session_duration = "4 hours"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:6:20: error: `session_duration` must be an ISO-8601 duration such as `PT1H`, `PT4H30M`, `PT12H`, not `4 hours`
  |
6 | session_duration = "4 hours"
  |                    ^^^^^^^^^
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
    check(
        r#"# T

```net check-reachable id=n
urls = ["https://example.com"]
timeout = "15"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:5:11: error: `timeout` must be a duration with a unit such as `30s`, `10m`, `1h30m`, not `15`
  |
5 | timeout = "15"
  |           ^^^^
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
    check(
        r#"# T

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "arn"
name = "Admin"
session_duration = "PT4H30M"
```
"#,
    )
    .code_is(0)
    .stderr_is("checked 1 runbook (1 step): 0 errors, 0 warnings\n");
}

/// A value only known at run time is typed when the step runs: the error names the parameter and
/// the step's line, and nothing is sent.
#[test]
fn a_bad_duration_known_only_at_run_time_names_the_parameter() {
    let text = r#"# T

```runbook
[inputs.hours]
prompt = "h"
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "arn:aws:sso:::instance/ssoins-1"
name = "Admin"
session_duration = "${inputs.hours}"
```
"#;
    let out = Test::new()
        .file("r.md", text)
        .aws(&Moto::shared().endpoint)
        .args(["run", "r.md", "--input", "hours=4 hours"])
        .run();
    out.code_is(1).stderr_has("r.md:8:1: error: step `ps` failed");
    assert!(
        out.stderr.contains("`session_duration`: "),
        "names the parameter: {out:?}"
    );
    out.stderr_has("`4 hours` is not an ISO-8601 duration");
}

/// A script whose value is a literal map has known outputs: a typo in a later reference is a
/// located error with a suggestion. A script that may `return` something else is checked at run
/// time only.
#[test]
fn outputs_of_a_script_returning_a_literal_map_are_checked() {
    check(
        r#"# T

```rhai id=names
let e = "a@example.com";
#{ email: e, name: "n" }
```

```manual id=m
instructions = "mail ${steps.names.emial}"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:9:24: error: step `names` has no output `emial`
  |
9 | instructions = "mail ${steps.names.emial}"
  |                        ^^^^^^^^^^^^^^^^^
  = help: did you mean `email`?
checked 1 runbook (2 steps): 1 error, 0 warnings
"#,
    );
    check(
        r#"# T

```rhai id=names
if true { return #{ other: 1 }; }
#{ email: 1 }
```

```manual id=m
instructions = "${steps.names.other}"
```
"#,
    )
    .code_is(0)
    .stderr_is("checked 1 runbook (2 steps): 0 errors, 0 warnings\n");
}

#[test]
fn missing_required_parameter() {
    check(
        r#"# T

```aws identitystore.wait-for-user
identity_store_id = "d-1"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:3:4: error: `identitystore.wait-for-user` needs parameter `user_name`
  |
3 | ```aws identitystore.wait-for-user
  |    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  = help: user_name: The user name as it will appear after the sync.
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn wrong_parameter_type() {
    check(
        r#"# T

```aws sso-admin.find-instance
wait = "yes"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:4:8: error: `wait` must be boolean, not a string
  |
4 | wait = "yes"
  |        ^^^^^
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn wrong_enumeration_value() {
    check(
        r#"# T

```aws sso-admin.ensure-assignment
instance_arn = "a"
permission_set_arn = "p"
principal_id = "u"
account_id = "1"
principal_type = "USR"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:8:18: error: `principal_type` must be one of USER, GROUP, not `USR`
  |
8 | principal_type = "USR"
  |                  ^^^^^
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn unknown_input_with_suggestion() {
    check(
        r#"# T

```runbook
[inputs.admin_user]
```

```manual
confirm = "Is ${inputs.admin_usr} ok?"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:8:17: error: unknown input `admin_usr`
  |
8 | confirm = "Is ${inputs.admin_usr} ok?"
  |                 ^^^^^^^^^^^^^^^^
  = help: did you mean `admin_user`?
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn exact_columns_inside_a_body_string() {
    check(
        r#"# T

```aws sso-admin.find-instance
region = "x-${inputs.nope}"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:4:15: error: unknown input `nope`
  |
4 | region = "x-${inputs.nope}"
  |               ^^^^^^^^^^^
  = help: declare it under [inputs.NAME] in the `runbook` block
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}

#[test]
fn step_that_comes_later() {
    check(
        r#"# T

```rhai id=first
steps.second.value
```

```rhai id=second
#{ value: 1 }
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:4:1: error: step `second` does not come before this one
  |
4 | steps.second.value
  | ^^^^^^^^^^^^^^^^^^
  = help: a step can read the outputs of earlier steps only
checked 1 runbook (2 steps): 1 error, 0 warnings
"#,
    );
}

#[test]
fn unknown_output_of_an_aws_step() {
    check(
        r#"# T

```aws sso-admin.find-instance id=ic
```

```manual
instructions = "${steps.ic.portal}"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:7:19: error: step `ic` has no output `portal`
  |
7 | instructions = "${steps.ic.portal}"
  |                   ^^^^^^^^^^^^^^^
  = help: its outputs are: found, identity_store_id, instance_arn, portal_url, region
checked 1 runbook (2 steps): 1 error, 0 warnings
"#,
    );
}

#[test]
fn verify_must_be_a_read_only_check() {
    check(
        r#"# T

```manual
confirm = "ok?"
verify = "aws organizations.ensure-organization"
```
"#,
    )
    .code_is(2)
    .stderr_is(
        r#"r.md:5:10: error: `verify` must be a read-only check, and `organizations.ensure-organization` changes things
  |
5 | verify = "aws organizations.ensure-organization"
  |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
checked 1 runbook (1 step): 1 error, 0 warnings
"#,
    );
}
