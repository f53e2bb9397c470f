//! Built-in actions as Automation steps. Most are a script (`py/*.py`, python3.11 + boto3)
//! that mirrors the action's `apply`: it looks before it creates, reads every page, looks again
//! after a conflict, and waits inside its budget (a polling script stops before Automation's
//! 600 s and is given `maxAttempts` for the rest of the step's timeout). `sts.whoami` is a plain
//! `aws:executeAwsApi` when only what the API returns is read. `support.ensure-case` hands over
//! to an approval when the account cannot use the Support API.

use std::collections::BTreeMap;

use super::rhai2py::py_str;
use super::steps::{self, POLL_BUDGET, script};
use super::values::{self, PyScope};
use super::{AStep, AutoType, Lower, Node, Outs, Target};
use crate::interp;
use crate::model::Step;

/// Each exportable action and its script.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("sts.whoami", include_str!("py/whoami.py")),
    ("iam.check-root-mfa", include_str!("py/check_root_mfa.py")),
    ("iam.check-role-quota", include_str!("py/check_role_quota.py")),
    (
        "organizations.ensure-organization",
        include_str!("py/ensure_organization.py"),
    ),
    (
        "organizations.check-management-account",
        include_str!("py/check_management_account.py"),
    ),
    (
        "organizations.check-account-names",
        include_str!("py/check_account_names.py"),
    ),
    ("organizations.ensure-account", include_str!("py/ensure_account.py")),
    ("sso-admin.find-instance", include_str!("py/find_instance.py")),
    (
        "sso-admin.ensure-permission-set",
        include_str!("py/ensure_permission_set.py"),
    ),
    ("sso-admin.ensure-assignment", include_str!("py/ensure_assignment.py")),
    ("sso-admin.remove-assignment", include_str!("py/remove_assignment.py")),
    ("identitystore.ensure-user", include_str!("py/ensure_user.py")),
    (
        "identitystore.ensure-group-membership",
        include_str!("py/ensure_group_membership.py"),
    ),
    ("identitystore.wait-for-user", include_str!("py/wait_for_user.py")),
    ("identitystore.find-user", include_str!("py/find_user.py")),
    ("identitystore.remove-user", include_str!("py/remove_user.py")),
    ("support.ensure-case", include_str!("py/ensure_case.py")),
];

/// Actions that wait, and so poll within a budget and retry for the rest of their timeout.
const POLLS: &[&str] = &[
    "organizations.ensure-account",
    "sso-admin.find-instance",
    "sso-admin.ensure-permission-set",
    "sso-admin.ensure-assignment",
    "sso-admin.remove-assignment",
    "identitystore.wait-for-user",
];

/// An Automation type for a botocore shape.
pub fn shape_type(service: &runbook_plugins::call::Service, shape: &str) -> AutoType {
    let Some(s) = service.shape(shape) else { return "String" };
    match s.ty.as_str() {
        "list" => match s.member.as_ref().and_then(|m| service.shape(&m.shape)) {
            Some(m) if m.ty == "structure" || m.ty == "map" => "MapList",
            _ => "StringList",
        },
        "structure" | "map" => "StringMap",
        "boolean" => "Boolean",
        "integer" | "long" => "Integer",
        _ => "String",
    }
}

/// Lowers a built-in action; the step named `name` carries its outputs.
pub fn lower(x: &mut Lower, step: &Step, action: &str, name: &str, inside: Option<&str>) -> Vec<AStep> {
    let Some(template) = TEMPLATES.iter().find(|(a, _)| *a == action).map(|(_, t)| *t) else {
        x.error(
            step.info_span,
            format!("cannot export `aws {action}`: the export has no lowering for it yet"),
            Some(format!(
                "leave it out with `--skip {}`, or do the same with a call by API name (`aws SERVICE:Operation`)",
                step.id
            )),
        );
        return Vec::new();
    };
    let key = interp::step_key(&step.id);
    let mut outputs: BTreeMap<String, AutoType> = x.info.get(&key).map(|i| i.outputs.clone()).unwrap_or_default();
    let reads = x.reads.get(&key).cloned().unwrap_or_default();
    if action == "sts.whoami"
        && inside.is_none()
        && reads
            .iter()
            .all(|f| matches!(f.as_str(), "account_id" | "arn" | "user_id"))
    {
        let mut s = AStep::new(
            name,
            "aws:executeAwsApi",
            Node::map()
                .with("Service", Node::s("sts"))
                .with("Api", Node::s("GetCallerIdentity")),
        );
        s.outputs = Outs::Api(
            [("account_id", "$.Account"), ("arn", "$.Arn"), ("user_id", "$.UserId")]
                .into_iter()
                .map(|(k, sel)| (k.to_string(), (sel.to_string(), "String")))
                .collect(),
        );
        return vec![s];
    }
    if action == "sts.whoami"
        && reads
            .iter()
            .any(|f| matches!(f.as_str(), "credentials" | "kind" | "name" | "is_root" | "*"))
    {
        x.note(
            step.info_span,
            "`sts.whoami` in an execution tells the role the automation runs as, not the person who started it",
        );
    }
    let table = toml::from_str::<toml::Table>(&step.body).unwrap_or_default();
    let mut scope = PyScope::new(x, x.cur_item.clone());
    let mut params = Vec::new();
    let mut secret = false;
    for (k, v) in &table {
        let val = values::value(step, &mut scope, v);
        secret |= val.secret;
        params.push(format!("{}: {}", py_str(k), val.py));
    }
    let timeout = steps::timeout_secs(step);
    let polls = POLLS.contains(&action);
    let budget = match (polls, timeout) {
        (true, Some(t)) => t.min(POLL_BUDGET),
        (true, None) => POLL_BUDGET,
        _ => 0,
    };
    params.push(format!("\"_budget\": {budget}"));
    let handover = action == "support.ensure-case";
    if handover {
        outputs.insert("handed_over_flag".into(), "String");
        outputs.insert("case_text".into(), "String");
        outputs.insert("console_link".into(), "String");
    }
    let pre = steps::condition(
        step,
        &mut scope,
        inside,
        outputs.iter().map(|(k, t)| (k.clone(), *t)).collect(),
    );
    let body = format!("{pre}    P = {{{}}}\n    return _plain(main(P))\n", params.join(", "));
    let defs = format!("{}\n\n", template.trim_end());
    let mut s = script(name, &mut scope, &defs, &body, Outs::Script(outputs));
    let errs = scope.take_errors();
    steps::flush(x, errs);
    if secret {
        x.error(
            step.info_span,
            format!(
                "cannot export `{}`: it passes a secret to `{action}`, whose parameters an execution records",
                step.id
            ),
            Some("keep secrets to `rhai` steps that read them by name".into()),
        );
    }
    if polls && let Some(t) = timeout {
        let attempts = t.div_ceil(POLL_BUDGET).max(1);
        if attempts > 1 {
            s.settings.push(("maxAttempts".into(), Node::Int(attempts as i64)));
        }
    }
    if polls {
        s.settings.push((
            "timeoutSeconds".into(),
            Node::Int((budget + 60).min(steps::SCRIPT_LIMIT) as i64),
        ));
    }
    let mut out = vec![s];
    if handover {
        for f in ["handed_over_flag", "case_text", "console_link"] {
            x.reads.entry(key.clone()).or_default().insert(f.to_string());
        }
        x.note(step.info_span, "when the account cannot use the Support API, the execution waits at an approval that shows the case text and the console link to file it by hand");
        let aname = x.helper(name, "handover");
        let bname = x.helper(name, "handover_if");
        let mut b = AStep::new(&bname, "aws:branch", Node::map());
        b.choices.push((
            vec![
                ("Variable".into(), Node::s(format!("{{{{ {name}.handed_over_flag }}}}"))),
                ("StringEquals".into(), Node::s("true")),
            ],
            Target::Name(aname.clone()),
        ));
        b.default = Some(Target::AfterSelf);
        out.push(b);
        let mut inputs = Node::map()
            .with("Approvers", Node::s("{{ Approvers }}"))
            .with("MinRequiredApprovals", Node::Int(1))
            .with(
                "Message",
                Node::s(format!(
                    "AWS Support cannot take this case through the API from this account. Open {{{{ {name}.console_link }}}} and file it by hand:\n\n{{{{ {name}.case_text }}}}\n\nHave you filed the case? (Approve = yes, Reject = no)"
                )),
            );
        if x.opts.approval_topic {
            inputs.set("NotificationArn", Node::s("{{ ApprovalTopicArn }}"));
        }
        let mut a = AStep::new(&aname, "aws:approve", inputs);
        a.description = Some(
            "The Support API refused (plan, activation, permissions or another account): a person files the case."
                .into(),
        );
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::TEMPLATES;

    /// Built-in actions with no lowering yet: exporting one is a located error naming it (and the
    /// book's SSM Automation page lists them). `net` probes are never exported.
    const NONE_YET: &[&str] = &[
        "organizations.list-accounts",
        "sso-admin.remove-permission-set",
        "support.case-status",
        "net.check-reachable",
    ];

    #[test]
    fn every_action_of_the_registry_has_a_lowering_or_is_listed_as_having_none() {
        let registry = runbook_plugins::Registry::shared();
        for name in registry.names() {
            let lowered = TEMPLATES.iter().any(|(a, _)| *a == name);
            assert!(
                lowered != NONE_YET.contains(&name),
                "{name}: lowered {lowered}, listed as none {}",
                !lowered
            );
        }
        for (a, _) in TEMPLATES {
            assert!(registry.get(a).is_some(), "a lowering for `{a}`, which is no action");
        }
    }
}
