//! Nothing is sent twice by the SDK. A create whose answer was lost after AWS acted (the fault
//! proxy lets moto act, then answers 500) must not be resent by the SDK's retries: the action
//! looks (GetUserId, ListPermissionSets, GetGroupMembershipId, DescribeOrganization) and takes
//! what it finds. A throttle (AWS did nothing) is still asked again. Which calls keep the SDK's
//! retries, and why, is `runbook_plugins::aws::RESENDS`.

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Output, Test, block_on, sdk};

const FIND: &str = "```aws sso-admin.find-instance id=ic\n```\n\n";

const USER: &str = "```aws identitystore.ensure-user id=u\nidentity_store_id = \"${steps.ic.identity_store_id}\"\nuser_name = \"ada\"\ndisplay_name = \"Ada L\"\ngiven_name = \"Ada\"\nfamily_name = \"L\"\nemail = \"ada@example.com\"\n```\n\n";

const SET: &str = "```aws sso-admin.ensure-permission-set id=ps\ninstance_arn = \"${steps.ic.instance_arn}\"\nname = \"ReadOnly\"\n```\n";

const MEMBERSHIP: &str = "```aws identitystore.ensure-group-membership id=gm\nidentity_store_id = \"${steps.ic.identity_store_id}\"\ngroup = \"admins\"\nuser_name = \"ada\"\n```\n";

const ORGANIZATION: &str = "# Org\n\n```aws organizations.ensure-organization id=org\n```\n";

/// Runs `text` through a proxy with `rules` and gives what the run said, the proxy and moto.
fn run(text: &str, rules: Rules, before: impl FnOnce(&str)) -> (Output, FaultProxy, Moto) {
    let moto = Moto::start();
    before(&moto.endpoint);
    let proxy = FaultProxy::start(&moto.endpoint, rules);
    let out = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    (out, proxy, moto)
}

fn losing(op: &str) -> Rules {
    Rules {
        lose_answer_once: Some(op.into()),
        ..Rules::default()
    }
}

/// The identity store's id and the users named `ada` in it.
fn adas(endpoint: &str) -> usize {
    block_on(async {
        let ctx = sdk(endpoint);
        let store = crate::common::instance(&ctx).await.store;
        let ids = ctx.identitystore(None).await.expect("client");
        let users = ids.list_users().identity_store_id(&store).send().await.expect("users");
        users.users().iter().filter(|u| u.user_name() == Some("ada")).count()
    })
}

/// Permission sets named `name`.
fn sets_named(endpoint: &str, name: &str) -> usize {
    block_on(async {
        let sso = sdk(endpoint).sso_admin(None).await.expect("client");
        let instance = sso.list_instances().send().await.expect("instances").instances()[0]
            .instance_arn()
            .expect("arn")
            .to_string();
        let sets = sso
            .list_permission_sets()
            .instance_arn(&instance)
            .send()
            .await
            .expect("sets");
        let mut n = 0;
        for arn in sets.permission_sets() {
            let d = sso
                .describe_permission_set()
                .instance_arn(&instance)
                .permission_set_arn(arn)
                .send()
                .await
                .expect("describe");
            n += usize::from(d.permission_set().and_then(|p| p.name()) == Some(name));
        }
        n
    })
}

/// A group `admins` and, when asked, the user `ada`, made before the run.
fn seed(endpoint: &str, with_user: bool) {
    block_on(async {
        let ctx = sdk(endpoint);
        let store = crate::common::instance(&ctx).await.store;
        let ids = ctx.identitystore(None).await.expect("client");
        ids.create_group()
            .identity_store_id(&store)
            .display_name("admins")
            .send()
            .await
            .expect("group");
        if with_user {
            ids.create_user()
                .identity_store_id(&store)
                .user_name("ada")
                .display_name("Ada L")
                .name(
                    aws_sdk_identitystore::types::Name::builder()
                        .given_name("Ada")
                        .family_name("L")
                        .build(),
                )
                .send()
                .await
                .expect("user");
        }
    })
}

/// Memberships of the group `admins`.
fn memberships(endpoint: &str) -> usize {
    block_on(async {
        let ctx = sdk(endpoint);
        let store = crate::common::instance(&ctx).await.store;
        let ids = ctx.identitystore(None).await.expect("client");
        let groups = ids
            .list_groups()
            .identity_store_id(&store)
            .send()
            .await
            .expect("groups");
        let group = groups.groups()[0].group_id().to_string();
        ids.list_group_memberships()
            .identity_store_id(&store)
            .group_id(group)
            .send()
            .await
            .expect("memberships")
            .group_memberships()
            .len()
    })
}

#[test]
fn a_lost_create_user_answer_is_looked_for_not_resent() {
    let (out, proxy, moto) = run(&format!("# U\n\n{FIND}{USER}"), losing("CreateUser"), |_| {});
    assert_eq!(proxy.injected("lost-answer"), 1, "{:?}", proxy.operations());
    assert_eq!(proxy.calls("CreateUser"), 1, "sent once: {:?}", proxy.operations());
    out.code_is(0).stdout_has("but it was done");
    assert_eq!(adas(&moto.endpoint), 1);
}

#[test]
fn a_lost_create_permission_set_answer_is_looked_for_not_resent() {
    // No duplicate rule: moto makes a second set of one name, so a resend would show as two.
    let (out, proxy, moto) = run(&format!("# S\n\n{FIND}{SET}"), losing("CreatePermissionSet"), |_| {});
    assert_eq!(proxy.injected("lost-answer"), 1, "{:?}", proxy.operations());
    out.code_is(0);
    assert_eq!(
        proxy.calls("CreatePermissionSet"),
        1,
        "sent once: {:?}",
        proxy.operations()
    );
    assert_eq!(sets_named(&moto.endpoint, "ReadOnly"), 1, "{out:?}");
}

#[test]
fn a_lost_create_group_membership_answer_is_looked_for_not_resent() {
    // moto makes a second membership of one user and group, so a resend would show as two.
    let (out, proxy, moto) = run(
        &format!("# M\n\n{FIND}{MEMBERSHIP}"),
        losing("CreateGroupMembership"),
        |e| seed(e, true),
    );
    assert_eq!(proxy.injected("lost-answer"), 1, "{:?}", proxy.operations());
    out.code_is(0);
    assert_eq!(
        proxy.calls("CreateGroupMembership"),
        1,
        "sent once: {:?}",
        proxy.operations()
    );
    assert_eq!(memberships(&moto.endpoint), 1, "{out:?}");
}

#[test]
fn a_lost_create_organization_answer_is_looked_for_not_resent() {
    let (out, proxy, _moto) = run(ORGANIZATION, losing("CreateOrganization"), |_| {});
    assert_eq!(proxy.injected("lost-answer"), 1, "{:?}", proxy.operations());
    out.code_is(0);
    assert_eq!(
        proxy.calls("CreateOrganization"),
        1,
        "sent once: {:?}",
        proxy.operations()
    );
}

/// A throttle means AWS did nothing: the create is asked again (the bundled fan-outs rely on it
/// under AWS's quotas), once per throttle, and one user is made.
#[test]
fn a_throttled_create_is_still_asked_again() {
    let rules = Rules {
        throttle_nth: Some(("CreateUser".into(), 1)),
        ..Rules::default()
    };
    let (out, proxy, moto) = run(&format!("# U\n\n{FIND}{USER}"), rules, |_| {});
    assert_eq!(proxy.injected_on("CreateUser"), 1, "{:?}", proxy.operations());
    out.code_is(0).stdout_lacks("but it was done");
    assert_eq!(proxy.calls("CreateUser"), 2, "asked again after the throttle");
    assert_eq!(adas(&moto.endpoint), 1);
}

/// A 500 before the request reached AWS: the look finds nothing, so the create is sent again,
/// once, and one user is made.
#[test]
fn a_create_that_never_reached_aws_is_sent_again_after_the_look() {
    let rules = Rules {
        server_error_nth: Some(("CreateUser".into(), 1)),
        ..Rules::default()
    };
    let (out, proxy, moto) = run(&format!("# U\n\n{FIND}{USER}"), rules, |_| {});
    out.code_is(0);
    assert_eq!(proxy.calls("CreateUser"), 2, "{:?}", proxy.operations());
    assert_eq!(adas(&moto.endpoint), 1);
}

/// Every call the table keeps off the SDK's retries has its lost-answer test (here, or in
/// `lost_answers.rs` and `gate.rs` for the calls that loop on their own).
#[test]
fn every_call_kept_from_the_sdks_retries_is_attacked_with_a_lost_answer() {
    let here = std::fs::read_to_string(crate::common::repo().join("tests/suite/sdk_retries.rs")).expect("this file");
    let lost = std::fs::read_to_string(crate::common::repo().join("tests/suite/lost_answers.rs")).expect("lost");
    for (call, how, _) in runbook_plugins::aws::RESENDS {
        if *how != runbook_plugins::aws::Resend::AfterLooking {
            continue;
        }
        let op = call.split(':').nth(1).expect("service:Operation");
        let named = format!("losing(\"{op}\")");
        let named_there = format!("lose_answer_once: Some(\"{op}\".into())");
        let part_2 = format!("part_2_losing(\"{op}\")");
        assert!(
            here.contains(&named) || lost.contains(&named_there) || lost.contains(&part_2),
            "{call} is kept from the SDK's retries, but no test loses its answer"
        );
    }
}

const TWO_ITEMS: &str = "# Twice\n\n```aws sso-admin.find-instance id=ic\n```\n\n```aws sso-admin:CreatePermissionSet id=mk for-each='[\"first\", \"second\"]'\nInstanceArn = \"${steps.ic.instance_arn}\"\nName = \"Same\"\nSessionDuration = \"PT1H\"\n```\n";

/// Two items of one fan-out that create the same thing by name: the first sends it, the other
/// says it was not sent, and no intent is journaled for it. It used to read the first's pending
/// mark as an unknown outcome and stop the run, which dropped the first between its intent and
/// its send: the journal said "sent" for a call that never reached AWS, and the next run asked
/// about it. The re-run sends nothing again.
#[test]
fn two_items_creating_one_thing_by_name_send_it_once_and_each_says_what_it_did() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            delay: std::time::Duration::from_millis(150),
            ..Rules::default()
        },
    );
    let t = Test::new().file("r.md", TWO_ITEMS).aws(&proxy.endpoint);
    let args = ["run".to_string(), "r.md".into(), "--max-in-flight".into(), "2".into()];
    let out = t.run_args(&args);
    let journal = crate::common::transcripts(&t.dir.path().join(".runbook"));
    assert_eq!(proxy.calls("CreatePermissionSet"), 1, "{out:?}\n{journal}");
    out.code_is(1).stderr_has("second: not sent: item `first`");
    let intents: Vec<&str> = journal.lines().filter(|l| l.contains("\"intent\"")).collect();
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert!(intents[0].contains("\"item_key\":\"first\""), "{intents:?}");
    let again = t.run_args(&args);
    again
        .code_is(1)
        .stderr_has("not sent: item `first`")
        .stderr_lacks("unknown");
    assert_eq!(proxy.calls("CreatePermissionSet"), 1, "{again:?}");
    assert_eq!(sets_named(&moto.endpoint, "Same"), 1);
}

/// `resend = true` answers the one unknown outcome it was given for. Here a CreateUser by name
/// loses its answer, a person answers resend = true, the resend loses its answer too: the next
/// run with the same answers file stops and asks again (it used to send a third CreateUser), and
/// an answer that names the new call by its time sends it.
#[test]
fn a_resend_answer_answers_only_the_call_it_was_given_for() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, losing("CreateUser"));
    let text = "# Resend\n\n```aws sso-admin.find-instance id=ic\n```\n\n```aws identitystore:CreateUser id=mk\nIdentityStoreId = \"${steps.ic.identity_store_id}\"\nUserName = \"resent\"\nDisplayName = \"R\"\nName = { GivenName = \"R\", FamilyName = \"S\" }\n```\n";
    let t = Test::new()
        .file("r.md", text)
        .file("a.toml", "[steps.mk]\nresend = true\n")
        .aws(&proxy.endpoint);
    let run = |answers: bool| {
        let mut args = vec!["run".to_string(), "r.md".into()];
        if answers {
            args.extend(["--answers".into(), "a.toml".into()]);
        }
        t.run_args(&args)
    };
    run(false).code_is(1);
    assert_eq!(proxy.calls("CreateUser"), 1);
    proxy.set_rules(losing("CreateUser"));
    let second = run(true);
    second.code_is(1);
    assert_eq!(
        proxy.calls("CreateUser"),
        2,
        "resent once, as the person said: {second:?}"
    );
    let third = run(true);
    assert_eq!(
        proxy.calls("CreateUser"),
        2,
        "a stale resend = true sent again: {third:?}"
    );
    third.code_is(3).stdout_has("not for this one");
    let all = third.all();
    let at = all
        .split("answer resend = \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the time to answer with")
        .to_string();
    std::fs::write(t.path("a.toml"), format!("[steps.mk]\nresend = \"{at}\"\n")).expect("answers");
    // Sent (the user was made by the first, so AWS refuses it: the person looked and chose).
    run(true).code_is(1).stderr_has("ConflictException");
    assert_eq!(proxy.calls("CreateUser"), 3, "an answer naming the call sends it");
}

/// Attacker finding (round 5): a CreateCase by name with `retries=3`, answered `400 InternalError`
/// (or 408) after AWS acted, was read as a refusal (below 500) and sent again: two cases. A 4xx
/// whose code says the server failed or timed out is a fault: the outcome is unknown, nothing is
/// sent again.
#[test]
fn a_create_by_name_answered_400_internal_error_after_acting_is_not_resent_by_retries() {
    for (status, code) in [
        ("400 Bad Request", "InternalError"),
        ("408 Request Timeout", "RequestTimeout"),
    ] {
        let rules = Rules {
            lost_answer_as: Some((status, code)),
            ..losing("CreateCase")
        };
        let (out, proxy, _moto) = run(
            "# C\n\n```aws support:CreateCase id=cc retries=3\nsubject = \"once\"\ncommunicationBody = \"x\"\nserviceCode = \"customer-account\"\ncategoryCode = \"activation\"\n```\n",
            rules,
            |_| {},
        );
        assert_eq!(proxy.injected("lost-answer"), 1, "{code}: {:?}", proxy.operations());
        assert_eq!(proxy.calls("CreateCase"), 1, "{code}: sent again: {out:?}");
        out.code_is(3);
    }
}

/// Attacker finding (round 5): a copy of a runbook (another title, another step id) sending the
/// same change, run against the same AWS spelled otherwise (`http://127.0.0.1:PORT/`,
/// `http://localhost:PORT`), did not see the call whose answer the first run lost, and sent it
/// again. One endpoint is one endpoint however it is written.
#[test]
fn a_lost_call_by_name_is_not_sent_again_by_a_copy_that_spells_the_endpoint_otherwise() {
    const CASE: &str = "subject = \"once\"\ncommunicationBody = \"x\"\nserviceCode = \"customer-account\"\ncategoryCode = \"activation\"\n```\n";
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, losing("CreateCase"));
    let first = Test::new()
        .file("rs.md", format!("# First\n\n```aws support:CreateCase id=cc\n{CASE}"))
        .aws(&proxy.endpoint);
    let lost = first.run_args(&["run".into(), "rs.md".into()]);
    assert_ne!(lost.code, 0, "{lost:?}");
    assert_eq!(proxy.calls("CreateCase"), 1);
    let state = first.path(".runbook").display().to_string();
    let port = proxy.endpoint.rsplit(':').next().unwrap_or_default().to_string();
    for spelled in [format!("{}/", proxy.endpoint), format!("http://localhost:{port}")] {
        let copy = Test::new()
            .file("copy.md", format!("# Copy\n\n```aws support:CreateCase id=dd\n{CASE}"))
            .aws(&spelled);
        let out = copy.run_args(&["run".into(), "copy.md".into(), "--state-dir".into(), state.clone()]);
        out.code_is(3);
        assert_eq!(proxy.calls("CreateCase"), 1, "{spelled}: sent again: {out:?}");
    }
}

/// Attacker finding (round 5): a `200` web page (a captive portal, a proxy's page) answering a
/// change by name was taken as AWS's answer: the step finished and the journal recorded a change
/// AWS may never have seen. It is an unknown outcome: the run stops and says so.
#[test]
fn a_web_page_answered_200_is_not_believed_as_aws_s_answer() {
    let rules = Rules {
        answer_op: Some((
            "CreateUser".into(),
            "200 OK",
            "text/html; charset=utf-8",
            "<html><body>Sign in to the network</body></html>".into(),
        )),
        ..Rules::default()
    };
    let (out, proxy, _moto) = run(
        "# U\n\n```aws iam:CreateUser id=u\nUserName = \"pat\"\n```\n",
        rules,
        |_| {},
    );
    assert_eq!(proxy.injected("answer"), 1, "the page answered instead of moto");
    out.code_is(1)
        .stderr_has("the outcome is unknown")
        .stderr_has("a web page, not an AWS answer");
    assert!(!out.stdout.contains("✓ u "), "{out:?}");
}

/// Attacker finding (round 6): an error without AWS's code (a proxy's HTML 403 page, after AWS
/// acted) was a refusal, and `retries=` sent a second CreateCase. An error AWS did not word is an
/// unknown outcome for a change; and an empty `200` to a change in a JSON protocol is not an
/// answer either (it was recorded as a case opened).
#[test]
fn a_change_met_by_a_page_without_aws_s_code_or_an_empty_200_is_unknown_not_refused_or_done() {
    const CASE: &str = "# C\n\n```aws support:CreateCase id=cc retries=3\nsubject = \"once\"\ncommunicationBody = \"x\"\nserviceCode = \"customer-account\"\ncategoryCode = \"activation\"\n```\n";
    let rules = Rules {
        lost_answer_as: Some(("403 Forbidden", "")),
        ..losing("CreateCase")
    };
    let (out, proxy, _moto) = run(CASE, rules, |_| {});
    assert_eq!(proxy.calls("CreateCase"), 1, "sent again: {out:?}");
    // The retry finds the unknown outcome and waits for a person (exit 3).
    out.code_is(3).stderr_has("is unknown");

    let rules = Rules {
        answer_op: Some((
            "CreateCase".into(),
            "200 OK",
            "application/x-amz-json-1.1",
            String::new(),
        )),
        ..Rules::default()
    };
    let (out, _proxy, _moto) = run(CASE, rules, |_| {});
    out.code_is(3).stdout_has("an empty body, not an AWS answer");
}
