//! What `retries=` does with each error, the deadline's messages, and what a step withholds.

use super::*;
use crate::exec::testing::Fixture;

#[test]
fn only_a_failure_is_retried_while_retries_are_left() {
    let failed = StepError::failed("x");
    let again = |attempt, wait| Retry::Again {
        attempt,
        wait: Duration::from_secs(wait),
    };
    assert_eq!(retry(&failed, 0, 3, false, None), again(1, 2));
    assert_eq!(retry(&failed, 1, 3, false, None), again(2, 4));
    assert_eq!(retry(&failed, 2, 3, false, None), again(3, 8));
    assert_eq!(retry(&failed, 3, 3, false, None), Retry::Stop);
    assert_eq!(retry(&failed, 0, 0, false, None), Retry::Stop);
    // The wait grows to 32 s and stays there.
    assert_eq!(retry(&failed, 4, 9, false, None), again(5, 32));
    assert_eq!(retry(&failed, 7, 9, false, None), again(8, 32));
    // A stopped run is not retried.
    assert_eq!(retry(&failed, 0, 3, true, None), Retry::Stop);
    for other in [
        StepError::Waiting("act".into()),
        StepError::Refused("no".into()),
        StepError::Unknown("lost".into()),
        StepError::Interrupted,
        StepError::Journal("full".into()),
        StepError::Events("closed".into()),
    ] {
        assert_eq!(retry(&other, 0, 3, false, None), Retry::Stop, "{other:?}");
    }
}

/// No wait ends past `timeout=`: the retry that would start after it is never made.
#[test]
fn a_retry_that_would_start_past_the_deadline_is_not_made() {
    let failed = StepError::failed("x");
    let secs = Duration::from_secs;
    assert_eq!(
        retry(&failed, 0, 3, false, Some(secs(3))),
        Retry::Again {
            attempt: 1,
            wait: secs(2)
        }
    );
    assert_eq!(
        retry(&failed, 0, 3, false, Some(secs(2))),
        Retry::OutOfTime { attempt: 1 }
    );
    assert_eq!(
        retry(&failed, 1, 3, false, Some(secs(3))),
        Retry::OutOfTime { attempt: 2 }
    );
    assert_eq!(
        retry(&failed, 0, 3, false, Some(Duration::ZERO)),
        Retry::OutOfTime { attempt: 1 }
    );
    // Out of retries is the step's own failure, deadline or not.
    assert_eq!(retry(&failed, 3, 3, false, Some(secs(1))), Retry::Stop);
}

const STEPS: &str = "# T\n\n```rhai id=r retries=3 timeout=5s\n1\n```\n\n```rhai id=n\n1\n```\n\n\
```aws iam:GetUser id=byname\nUserName = \"u\"\n```\n\n```net check-reachable id=net\nurls = [\"https://example.com\"]\n```\n\n\
```aws sts.whoami id=builtin\n```\n\n```manual id=m\nconfirm = \"ok?\"\n```\n";

fn message(e: StepError) -> String {
    match e {
        StepError::Failed { message, .. } => message,
        other => format!("{other:?}"),
    }
}

#[test]
fn retries_and_timeout_as_written() {
    let f = Fixture::run(STEPS);
    assert_eq!(retries(f.step("r")), 3);
    assert_eq!(retries(f.step("n")), 0);
    assert_eq!(
        message(out_of_time(f.step("r"), StepError::failed("throttled"), 2)),
        "throttled (timeout=5s leaves no time for retry 2)"
    );
    assert_eq!(
        message(not_started(f.step("r"))),
        "not started: the step's timeout=5s ran out before it (nothing was sent)"
    );
    assert_eq!(
        message(timed_out(f.step("n"))),
        "timed out: the step's timeout=? ran out while it waited for AWS"
    );
    assert!(matches!(
        out_of_time(f.step("r"), StepError::Interrupted, 1),
        StepError::Interrupted
    ));
}

/// A call by name or a `net` check may carry its request back transformed: its answer is
/// secret as a whole when the request held one. A built-in action answers in typed outputs.
#[test]
fn calls_by_name_and_net_checks_echo_their_request() {
    let f = Fixture::run(STEPS);
    let echoing: Vec<&str> = f
        .shared
        .runbook
        .steps
        .iter()
        .filter(|s| echoes(s))
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(echoing, ["byname", "net"]);
    let described: Vec<String> = f.shared.runbook.steps.iter().map(describe).collect();
    assert_eq!(
        described,
        [
            "rhai",
            "rhai",
            "aws iam:GetUser",
            "net check-reachable",
            "aws sts.whoami",
            "manual"
        ]
    );
}

/// A request that held a secret: AWS's error code stays, the text (which may quote the
/// secret) does not.
#[test]
fn a_secret_requests_failure_keeps_the_code_and_withholds_the_text() {
    let failed = |m: &str| StepError::Failed {
        message: m.into(),
        hint: Some("h".into()),
        at: Some(crate::source::Span::new(1, 2)),
    };
    let shown = |e: StepError| match withheld(e) {
        StepError::Failed { message, hint, at } => (message, hint, at),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        shown(failed(
            "iam:GetUser failed: NoSuchEntity: The user with name hunter2 cannot be found."
        )),
        (
            "iam:GetUser failed: NoSuchEntity (the rest of the message is withheld: the request holds a secret)"
                .to_string(),
            Some("h".to_string()),
            None
        )
    );
    // No code where one would be: nothing of the text.
    assert_eq!(
        shown(failed("iam:GetUser failed: no such user hunter2: x")).0,
        "the step failed (the rest of the message is withheld: the request holds a secret)"
    );
    assert_eq!(
        shown(failed("connect hunter2: refused: x")).0,
        "the step failed (the rest of the message is withheld: the request holds a secret)"
    );
    assert_eq!(
        shown(failed("hunter2")).0,
        "the step failed (the rest of the message is withheld: the request holds a secret)"
    );
    assert!(matches!(withheld(StepError::Waiting("w".into())), StepError::Waiting(m) if m == "w"));
}
