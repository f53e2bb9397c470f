//! A permission set changed after it was assigned is provisioned again, so the accounts' roles
//! carry the change: also when AWS lists them late, when provisioning fails, and after a kill.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::fixtures::ASSIGNMENT;
use crate::common::{Moto, Test};

/// ASSIGNMENT with the permission set's session duration and policies as given.
fn assignment_with(duration: &str, policies: &str) -> String {
    ASSIGNMENT.replace(
        "managed_policies = [\"AdministratorAccess\"]",
        &format!("session_duration = \"{duration}\"\nmanaged_policies = [{policies}]"),
    )
}

/// The outputs the last run recorded for `step` (the one-line summary shows only a few).
pub(crate) fn outputs(dir: &std::path::Path, step: &str) -> serde_json::Value {
    let runs = crate::common::run_dirs(&dir.join(".runbook"));
    let state = std::fs::read_to_string(runs.first().expect("a run").join("state.json")).expect("state");
    let v: serde_json::Value = serde_json::from_str(&state).expect("json");
    v["steps"][step]["outputs"].clone()
}

fn intents_and_answers(dir: &std::path::Path, call: &str) -> (usize, usize) {
    let t = crate::common::transcripts(&dir.join(".runbook"));
    let lines: Vec<&str> = t.lines().filter(|l| l.contains(call)).collect();
    (
        lines.iter().filter(|l| l.contains(r#""event":"intent""#)).count(),
        lines.iter().filter(|l| l.contains(r#""event":"requested""#)).count(),
    )
}

#[test]
fn a_changed_assigned_permission_set_is_provisioned_again() {
    let moto = Moto::start();
    // Provisioning reads IN_PROGRESS twice before it succeeds: the step waits for it.
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            in_progress_reads: 2,
            ..Rules::default()
        },
    );
    let admin = "\"AdministratorAccess\"";
    let t = Test::new()
        .file("r.md", assignment_with("PT1H", admin))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    let first = t.run();
    first.code_is(0);
    assert_eq!(outputs(t.dir.path(), "ps")["created"], true);
    assert_eq!(
        proxy.calls("ProvisionPermissionSet"),
        0,
        "a new set is provisioned by its assignment"
    );

    // A longer session for the assigned set: updated, then provisioned again, and waited for.
    std::fs::write(t.path("r.md"), assignment_with("PT4H", admin)).expect("write");
    let longer = t.run();
    longer.code_is(0);
    assert_eq!(proxy.calls("UpdatePermissionSet"), 1);
    assert_eq!(
        proxy.calls("ProvisionPermissionSet"),
        1,
        "ProvisionPermissionSet reached the emulator"
    );
    longer.stdout_has("provisioned=true");
    assert_eq!(outputs(t.dir.path(), "ps")["updated"], true);
    assert_eq!(
        proxy.calls("DescribePermissionSetProvisioningStatus"),
        2,
        "polled to SUCCEEDED"
    );
    assert_eq!(
        intents_and_answers(t.dir.path(), "sso-admin:ProvisionPermissionSet"),
        (1, 1)
    );

    // Unchanged: nothing to provision.
    let same = t.run_args(&["run".into(), "r.md".into(), "--restart".into()]);
    same.code_is(0).stdout_has("provisioned=false");
    assert_eq!(proxy.calls("ProvisionPermissionSet"), 1);

    // Another managed policy is a change too.
    std::fs::write(
        t.path("r.md"),
        assignment_with("PT4H", &format!("{admin}, \"ReadOnlyAccess\"")),
    )
    .expect("write");
    let policy = t.run();
    policy.code_is(0).stdout_has("provisioned=true");
    assert_eq!(proxy.calls("AttachManagedPolicyToPermissionSet"), 2);
    assert_eq!(proxy.calls("ProvisionPermissionSet"), 2);
}

#[test]
fn a_change_is_provisioned_even_before_aws_lists_the_accounts_as_behind() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            provisioning_listing_lags: true,
            ..Rules::default()
        },
    );
    let t = Test::new()
        .file("r.md", assignment_with("PT1H", "\"AdministratorAccess\""))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    assert_eq!(t.run().code, 0);
    std::fs::write(t.path("r.md"), assignment_with("PT8H", "\"AdministratorAccess\"")).expect("write");
    let out = t.run();
    out.code_is(0);
    assert_eq!(
        proxy.calls("ProvisionPermissionSet"),
        1,
        "the change itself calls for provisioning"
    );
}

#[test]
fn a_failed_provisioning_says_why() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new()
        .file("r.md", assignment_with("PT1H", "\"AdministratorAccess\""))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    assert_eq!(t.run().code, 0);
    proxy.set_rules(Rules {
        in_progress_reads: 1,
        fail_with: Some("The IAM role quota of account 123456789012 is exceeded".into()),
        ..Rules::default()
    });
    std::fs::write(t.path("r.md"), assignment_with("PT2H", "\"AdministratorAccess\"")).expect("write");
    let out = t.run();
    out.code_is(1);
    assert!(
        out.stderr.contains(
            "provisioning of permission set AdministratorAccess failed: The IAM role quota of account 123456789012 is exceeded"
        ),
        "{out:?}"
    );
}

#[test]
fn a_run_killed_between_the_change_and_the_provisioning_provisions_on_resume() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new()
        .file("r.md", assignment_with("PT1H", "\"AdministratorAccess\""))
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    assert_eq!(t.run().code, 0);
    std::fs::write(t.path("r.md"), assignment_with("PT2H", "\"AdministratorAccess\"")).expect("write");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_runbook"));
    // No wait for abandoned calls to land: these tests re-run at once on purpose.
    cmd.env("RUNBOOK_LANDING_MS", "0");
    cmd.args(["run", "r.md"])
        .current_dir(t.dir.path())
        .env("NO_COLOR", "1")
        .env("HOME", t.dir.path())
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("RUNBOOK_POLL_INITIAL_MS", "20")
        .env("RUNBOOK_POLL_CAP_MS", "100")
        .env_remove("AWS_PROFILE")
        .env_remove("RUNBOOK_STATE_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    // UpdatePermissionSet is the first mutating call, ProvisionPermissionSet the second: the
    // run dies after the change landed and before the provisioning left.
    proxy.arm_kill_before_call(child.id(), 2);
    let status = child.wait().expect("wait");
    assert!(proxy.killed(), "the kill point was reached: {status:?}");
    proxy.disarm_kill();
    assert_eq!(proxy.calls("UpdatePermissionSet"), 1);
    let resumed = t.run();
    resumed.code_is(0);
    // Nothing differs from what the step asks any more, but AWS reports the account on an
    // older version of the set: provisioned.
    resumed.stdout_has("provisioned=true");
    assert_eq!(outputs(t.dir.path(), "ps")["updated"], false);
    assert_eq!(proxy.calls("UpdatePermissionSet"), 1);
}

// Item 4: every refusal of the Support API that means "this account cannot use it" hands the
// case over to the console, with the link and the text on disk; none is a plain failure.
