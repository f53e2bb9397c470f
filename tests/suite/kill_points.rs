//! Crash safety at many points. A runbook with AWS steps, two fan-outs and a manual step is
//! SIGKILLed right after moto answered its Nth request and before that answer reached runbook —
//! the call happened, the journal cannot know — then resumed. After every kill: the state file
//! parses, the transcript is valid JSON lines, and once resumed the emulator holds exactly one of
//! each resource.
//!
//! The kill points come from a seed the test prints. `RUNBOOK_KILL_SEED` and
//! `RUNBOOK_KILL_POINTS` (default 50) replay or widen a run.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test, block_on, sdk};

const ACCOUNTS: usize = 10;

const SCENARIO: &str = r#"# Crash scenario

```rhai id=names
let v = [];
for i in 0..10 { v.push(`acme-k${i}-prod`); }
#{ names: v }
```

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=accts for-each="steps.names.names" timeout=60s
name = "${item}"
email = "aws+${item}@example.com"
```

```aws sso-admin.find-instance id=ic
```

```manual id=approve
confirm = "Approved by the change board?"
[ask.ticket]
prompt = "Change ticket"
pattern = "CHG-[0-9]+"
```

```aws identitystore.ensure-user id=user
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "ops"
display_name = "Ops"
given_name = "O"
family_name = "Ps"
email = "ops@example.com"
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "${steps.ic.instance_arn}"
name = "AdministratorAccess"
managed_policies = ["AdministratorAccess"]
```

```aws sso-admin.ensure-assignment id=assign for-each='steps.accts.results.map(|r| r.account_id)' timeout=60s
instance_arn = "${steps.ic.instance_arn}"
permission_set_arn = "${steps.ps.arn}"
principal_id = "${steps.user.user_id}"
account_id = "${item}"
```
"#;

const ANSWERS: &str = r#"[steps.approve]
confirm = true
ticket = "CHG-1042"
"#;

struct Rig {
    moto: Moto,
    proxy: FaultProxy,
}

impl Rig {
    fn new() -> Rig {
        let moto = Moto::start();
        // Every asynchronous creation reads IN_PROGRESS once first: polling is a kill point too.
        let proxy = FaultProxy::start(
            &moto.endpoint,
            Rules {
                in_progress_reads: 1,
                ..Rules::default()
            },
        );
        Rig { moto, proxy }
    }

    fn command(&self, t: &Test) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
        // No wait for abandoned calls to land: these tests re-run at once on purpose.
        cmd.env("RUNBOOK_LANDING_MS", "0");
        cmd.args(["run", "r.md", "--answers", "answers.toml", "--max-in-flight", "3"])
            .current_dir(t.dir.path())
            .env("NO_COLOR", "1")
            .env("HOME", t.dir.path())
            .env("AWS_ENDPOINT_URL", &self.proxy.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("RUNBOOK_POLL_INITIAL_MS", "20")
            .env("RUNBOOK_POLL_CAP_MS", "100")
            .env_remove("AWS_PROFILE")
            .env_remove("RUNBOOK_STATE_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// One clean run: how many requests moto answers for the whole scenario, and how many of
    /// them are mutating calls.
    fn requests_in_a_clean_run(&self) -> (usize, usize) {
        self.moto.reset();
        let t = scenario();
        let (before, mutating) = (self.proxy.forwarded(), self.proxy.mutating());
        let out = self.command(&t).output().expect("run");
        assert!(
            out.status.success(),
            "clean run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (self.proxy.forwarded() - before, self.proxy.mutating() - mutating)
    }

    /// Kills the run at its kill point (after moto's `nth` answer, or as its `nth` mutating
    /// call arrives, before it is forwarded), checks the journal, resumes, checks AWS.
    /// Returns false when the run ended before the kill point.
    fn kill_and_resume(&self, point: Point) -> bool {
        self.moto.reset();
        let t = scenario();
        let mutating_before = self.proxy.mutating();
        let mut child = self.command(&t).spawn().expect("spawn");
        let nth = match point {
            Point::AfterAnswer(n) => {
                self.proxy.arm_kill(child.id(), n);
                n
            }
            Point::BeforeCall(n) => {
                self.proxy.arm_kill_before_call(child.id(), n);
                n
            }
        };
        let status = child.wait().expect("wait");
        if !self.proxy.killed() {
            assert!(
                status.success(),
                "kill point {nth}: the unkilled run failed: {status:?}"
            );
            return false;
        }
        assert!(
            status.code().is_none(),
            "kill point {nth}: killed by a signal, not {status:?}"
        );
        check_journal(&t.path(".runbook"), nth);
        // Every mutating call that left runbook had its intent on disk first.
        let intents = crate::common::transcripts(&t.path(".runbook"))
            .matches(r#""event":"intent""#)
            .count();
        let sent = self.proxy.mutating() - mutating_before;
        assert!(
            intents >= sent,
            "kill point {point:?}: {sent} mutating calls left runbook, {intents} intents journaled"
        );
        self.proxy.disarm_kill();
        let out = self.command(&t).output().expect("resume");
        assert!(
            out.status.success(),
            r#"kill point {nth}: resume failed:
{}
{}"#,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        check_exactly_one_of_each(&self.moto.endpoint, nth);
        true
    }
}

fn scenario() -> Test {
    Test::new().file("r.md", SCENARIO).file("answers.toml", ANSWERS)
}

fn check_journal(state: &Path, nth: usize) {
    let dirs = crate::common::run_dirs(state);
    assert!(
        !dirs.is_empty(),
        "kill point {nth}: no journal under {}",
        state.display()
    );
    for dir in dirs {
        if let Ok(text) = std::fs::read_to_string(dir.join("state.json")) {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("kill point {nth}: state.json does not parse: {e}\n{text}"));
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("transcript.jsonl")) {
            // A valid JSON-lines prefix: every line that ends in a newline parses.
            let complete = text.rsplit_once('\n').map_or("", |(head, _)| head);
            for (i, line) in complete.lines().enumerate() {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("kill point {nth}: transcript line {}: {e}: {line}", i + 1));
            }
        }
    }
}

fn check_exactly_one_of_each(endpoint: &str, nth: usize) {
    block_on(async {
        let ctx = sdk(endpoint);
        let accounts: Vec<_> = runbook_plugins::aws::organizations::all_accounts(&ctx)
            .await
            .expect("accounts")
            .into_iter()
            .filter(|a| a.name.starts_with("acme-"))
            .collect();
        let emails: BTreeSet<&str> = accounts.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(
            (accounts.len(), emails.len()),
            (ACCOUNTS, ACCOUNTS),
            "kill point {nth}: accounts {accounts:?}"
        );
    });
    let ic = crate::common::identity_center(endpoint);
    assert_eq!(ic.users, 1, "kill point {nth}: users");
    assert_eq!(ic.permission_sets, 1, "kill point {nth}: permission sets");
    let distinct: BTreeSet<&String> = ic.assigned.iter().collect();
    assert_eq!(
        (ic.assigned.len(), distinct.len()),
        (ACCOUNTS, ACCOUNTS),
        "kill point {nth}: assignments {:?}",
        ic.assigned
    );
}

#[derive(Debug, Clone, Copy)]
enum Point {
    /// After moto answered the nth request, before the answer reached runbook.
    AfterAnswer(usize),
    /// As the nth mutating call arrives, before it reaches moto: after its intent was written.
    BeforeCall(usize),
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn killed_at_many_points_the_run_resumes_to_exactly_one_of_each() {
    let seed: u64 = std::env::var("RUNBOOK_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_128);
    let wanted: usize = std::env::var("RUNBOOK_KILL_POINTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    eprintln!("kill points: seed {seed} (RUNBOOK_KILL_SEED={seed} replays this run), {wanted} points");

    let first = Rig::new();
    let (total, mutating) = first.requests_in_a_clean_run();
    assert!(total > 40, "the scenario makes {total} requests");
    assert!(mutating >= 20, "the scenario makes {mutating} mutating calls");
    // Points spread over the run: one per stratum, at a seeded place inside it. The last tenth
    // is left out, since concurrency lets the request count of a run vary a little.
    let span = (total * 9 / 10).max(2);
    let mut rng = seed.max(1);
    let mut points: Vec<Point> = (0..wanted)
        .map(|i| {
            let lo = 1 + i * (span - 1) / wanted;
            let hi = (1 + (i + 1) * (span - 1) / wanted).max(lo + 1);
            Point::AfterAnswer(lo + (xorshift(&mut rng) as usize) % (hi - lo))
        })
        .collect();
    // And between intent and call: a kill as each of a seeded third of the mutating calls
    // arrives (every fifth one at least), before it reaches moto.
    let before: Vec<Point> = (1..=mutating.saturating_sub(1))
        .filter(|n| n % 5 == 1 || xorshift(&mut rng) % 3 == 0)
        .map(Point::BeforeCall)
        .collect();
    let wanted = wanted + before.len();
    points.extend(before);
    eprintln!("a clean run makes {total} requests ({mutating} mutating); kill points {points:?}");

    let queue = Arc::new(Mutex::new(points));
    let survived = Arc::new(AtomicUsize::new(0));
    let missed = Arc::new(Mutex::new(Vec::new()));
    let mut rigs = vec![first];
    rigs.push(Rig::new());
    std::thread::scope(|s| {
        for rig in &rigs {
            let (queue, survived, missed) = (queue.clone(), survived.clone(), missed.clone());
            s.spawn(move || {
                loop {
                    let Some(point) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        return;
                    };
                    if rig.kill_and_resume(point) {
                        survived.fetch_add(1, Ordering::Relaxed);
                    } else if let Ok(mut m) = missed.lock() {
                        m.push(point);
                    }
                }
            });
        }
    });
    let survived = survived.load(Ordering::Relaxed);
    let missed = missed.lock().map(|m| m.clone()).unwrap_or_default();
    eprintln!("kill points survived: {survived}; runs that ended before their point: {missed:?}");
    assert_eq!(survived, wanted, "kill points not reached: {missed:?}");
}
