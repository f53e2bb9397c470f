//! The answers the fault proxy rewrites or gives itself (provisioning, async statuses, the quota
//! model's listings) and what it reads from a request (who signed it, the credentials it
//! carried). The root caller, root MFA and provisioning status are the emulator's own rules.

use std::sync::Mutex;

use runbook::emulator::identity_center::{CHANGES_A_SET, provisioning_status};
use runbook::emulator::rules::{root_caller, root_mfa};
use runbook::emulator::wire::{Answer, Call};
use serde_json::Value;

use super::State;

/// Whether an operation can change something at AWS.
pub(super) fn is_mutating(op: &str) -> bool {
    [
        "Create",
        "Attach",
        "Update",
        "Provision",
        "Delete",
        "Detach",
        "Put",
        "Register",
        "Enable",
    ]
    .iter()
    .any(|p| op.starts_with(p))
}

/// A refusal that quotes the request's access key id and session token.
pub(super) fn credentials_quoted(call: &Call) -> String {
    let key = call
        .header("authorization")
        .split_once("Credential=")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or("");
    let token = call.header("x-amz-security-token");
    // Also as a service that quotes what it was sent might: encoded (S3's CanonicalRequestBytes
    // are hex; a header echoed base64), upper-cased, reversed.
    use base64::Engine as _;
    let signed = base64::engine::general_purpose::STANDARD.encode(format!("x-amz-security-token:{token}\nkey:{key}"));
    let reversed: String = token.chars().rev().collect();
    format!(
        "The access key id {key} (session token {token}) is not allowed to make this call; as signed: {signed} {} {reversed} {}",
        hex::encode(token),
        token.to_uppercase()
    )
}

/// Who signed a request and what IAM authorises it as: the access key id and the SigV4 credential
/// scope's service (`Credential=AKID/20260101/us-east-1/sso/aws4_request`) with the operation.
pub(super) fn signed_for(call: &Call, op: &str) -> (String, String) {
    let scope: Vec<&str> = call
        .header("authorization")
        .split_once("Credential=")
        .map(|(_, rest)| rest.split(['/', ',']).collect())
        .unwrap_or_default();
    let key = scope.first().copied().unwrap_or("unsigned").to_string();
    let service = scope.get(3).copied().unwrap_or("unsigned");
    // A REST API names its operation by method and path (`POST /putAlternateContact`).
    let op = if op == "unknown" {
        let target = call.uri.path_and_query().map_or("/", |p| p.as_str());
        format!("{} {target}", call.method)
    } else {
        op.to_string()
    };
    (key, format!("{service}:{op}"))
}

/// Records what permission set provisioning depends on, and answers the two calls moto gets
/// wrong (None: forward the request to moto).
pub(super) fn provisioning(op: &str, call: &Call, state: &Mutex<State>) -> Option<Answer> {
    let v: Value = serde_json::from_slice(&call.body).ok()?;
    let ps = v["PermissionSetArn"].as_str().unwrap_or("").to_string();
    let mut s = state.lock().ok()?;
    match op {
        _ if CHANGES_A_SET.contains(&op) => {
            s.changed_sets.insert(ps);
            None
        }
        "ProvisionPermissionSet" => {
            s.changed_sets.remove(&ps);
            None
        }
        "CreateAccountAssignment" => {
            let account = v["TargetId"].as_str().unwrap_or("").to_string();
            // As at AWS, the first assignment provisions the set as it is now: no account is
            // then on an older version.
            if !s.assigned.contains_key(&ps) {
                s.changed_sets.remove(&ps);
            }
            s.assigned.entry(ps).or_default().insert(account);
            None
        }
        "DescribePermissionSetProvisioningStatus" => Some(provisioning_status(call)),
        "ListAccountsForProvisionedPermissionSet"
            if v["ProvisioningStatus"] == "LATEST_PERMISSION_SET_NOT_PROVISIONED" =>
        {
            let mut ids: Vec<&String> = if s.changed_sets.contains(&ps) && !s.rules.provisioning_listing_lags {
                s.assigned.get(&ps).map(|a| a.iter().collect()).unwrap_or_default()
            } else {
                Vec::new()
            };
            ids.sort();
            Some(json_answer(serde_json::json!({ "AccountIds": ids })))
        }
        // As at AWS, an assignment provisions the set to its account (moto lists only sets
        // provisioned by ProvisionPermissionSet, and only to the caller's account).
        "ListAccountsForProvisionedPermissionSet" if v.get("ProvisioningStatus").is_none() => {
            let mut ids: Vec<&String> = s.assigned.get(&ps).map(|a| a.iter().collect()).unwrap_or_default();
            ids.sort();
            Some(json_answer(serde_json::json!({ "AccountIds": ids })))
        }
        _ => None,
    }
}

/// Turns moto's instant SUCCEEDED into IN_PROGRESS (K reads), then SUCCEEDED or FAILED.
/// ListCreateAccountStatus asks moto for every state when the rules report all as IN_PROGRESS.
pub(super) fn rewrite_request(op: &str, mut call: Call, state: &Mutex<State>) -> Call {
    let all = state.lock().map(|s| s.rules.list_in_progress).unwrap_or(false);
    if op != "ListCreateAccountStatus" || !all {
        return call;
    }
    if let Ok(mut v) = serde_json::from_slice::<Value>(&call.body) {
        if let Some(o) = v.as_object_mut() {
            o.remove("States");
        }
        // The wire sets the length of the body it sends.
        if let Ok(body) = serde_json::to_vec(&v) {
            call.body = body.into();
        }
    }
    call
}

/// A JSON-protocol answer of the proxy's own.
pub(super) fn json_answer(body: Value) -> Answer {
    Answer::new(200, "application/x-amz-json-1.1", body.to_string())
}

/// A moto answer (or one of the proxy's own) as the rules change it.
pub(super) fn rewrite(op: &str, answer: Answer, state: &Mutex<State>) -> Answer {
    let rules = state.lock().map(|s| s.rules.clone()).unwrap_or_default();
    if op == "GetAccountSummary" && rules.root_mfa {
        return root_mfa(answer, true);
    }
    if op == "GetCallerIdentity" && rules.root_caller {
        return root_caller(answer);
    }
    let body = rewrite_body(op, answer.body.to_vec(), state, &rules);
    answer.with_body(body)
}

fn rewrite_body(op: &str, body: Vec<u8>, state: &Mutex<State>, rules: &super::Rules) -> Vec<u8> {
    if op == "ListAccounts" && rules.hide_accounts {
        if let Ok(mut v) = serde_json::from_slice::<Value>(&body) {
            if let Some(a) = v.get_mut("Accounts").and_then(Value::as_array_mut) {
                a.retain(|acct| !acct["Email"].as_str().unwrap_or("").starts_with("aws+"));
            }
            return serde_json::to_vec(&v).unwrap_or(body);
        }
    }
    if op == "ListCreateAccountStatus" && rules.list_in_progress {
        if let Ok(mut v) = serde_json::from_slice::<Value>(&body) {
            if let Some(a) = v.get_mut("CreateAccountStatuses").and_then(Value::as_array_mut) {
                for st in a.iter_mut().filter_map(Value::as_object_mut) {
                    st.insert("State".into(), Value::from("IN_PROGRESS"));
                    st.remove("AccountId");
                }
            }
            return serde_json::to_vec(&v).unwrap_or(body);
        }
    }
    if op == "ListPermissionSets" {
        let hide = state
            .lock()
            .map(|mut s| std::mem::take(&mut s.rules.hide_permission_sets_once))
            .unwrap_or(false);
        if hide {
            return br#"{"PermissionSets": []}"#.to_vec();
        }
    }
    let (obj, field, id_field) = match op {
        "CreateAccount" | "DescribeCreateAccountStatus" => ("CreateAccountStatus", "State", "Id"),
        "CreateAccountAssignment" | "DescribeAccountAssignmentCreationStatus" => {
            ("AccountAssignmentCreationStatus", "Status", "RequestId")
        }
        "ProvisionPermissionSet" | "DescribePermissionSetProvisioningStatus" => {
            ("PermissionSetProvisioningStatus", "Status", "RequestId")
        }
        _ => return body,
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    let Some(st) = v.get_mut(obj).and_then(Value::as_object_mut) else {
        return body;
    };
    let id = st.get(id_field).and_then(Value::as_str).unwrap_or("").to_string();
    let Ok(mut s) = state.lock() else { return body };
    if let Some(model) = s.rules.quota.clone() {
        let now = std::time::Instant::now();
        if op.starts_with("Create") {
            s.quota.created(&id, now);
        }
        let settled = s.quota.settled(&model, &id, now).unwrap_or(true);
        let assignment = s.quota.assignment_status(&model, &id, now);
        drop(s);
        if let Some((status, reason)) = assignment {
            st.insert(field.into(), Value::from(status));
            if let Some(r) = reason {
                st.insert("FailureReason".into(), Value::from(r));
            }
        } else if !settled {
            st.insert(field.into(), Value::from("IN_PROGRESS"));
            st.remove("AccountId");
        }
        return serde_json::to_vec(&v).unwrap_or(body);
    }
    let reads = {
        let r = s.reads.entry(id).or_default();
        *r += 1;
        *r
    };
    let rules = s.rules.clone();
    drop(s);
    if rules.never_finish || reads <= rules.in_progress_reads {
        st.insert(field.into(), Value::from("IN_PROGRESS"));
        st.remove("AccountId");
    } else if let Some(reason) = &rules.fail_with {
        st.insert(field.into(), Value::from("FAILED"));
        st.insert("FailureReason".into(), Value::from(reason.clone()));
        st.remove("AccountId");
    }
    serde_json::to_vec(&v).unwrap_or(body)
}

/// Under the quota model: moto made an assignment (its CreateAccountAssignment answer), which the
/// model follows from now on.
pub(super) fn track_assignment(op: &str, call: &Call, answer: &[u8], state: &Mutex<State>) {
    if op != "CreateAccountAssignment" {
        return;
    }
    let (Ok(asked), Ok(answered)) = (
        serde_json::from_slice::<Value>(&call.body),
        serde_json::from_slice::<Value>(answer),
    ) else {
        return;
    };
    let Some(id) = answered["AccountAssignmentCreationStatus"]["RequestId"].as_str() else {
        return;
    };
    let field = |k: &str| asked[k].as_str().unwrap_or("").to_string();
    if let Ok(mut s) = state.lock()
        && s.rules.quota.is_some()
    {
        s.quota.assignment_created(
            id,
            &field("TargetId"),
            &field("PermissionSetArn"),
            &field("PrincipalId"),
            std::time::Instant::now(),
        );
    }
}

/// Under the quota model, what AWS answers and moto cannot: ListAccountAssignmentCreationStatus
/// from the creations the model saw (filtered by status, in pages of MaxResults, 100 at most).
pub(super) fn quota_answer(op: &str, call: &Call, state: &Mutex<State>) -> Option<Answer> {
    if op != "ListAccountAssignmentCreationStatus" {
        return None;
    }
    let s = state.lock().ok()?;
    let model = s.rules.quota.clone()?;
    let v: Value = serde_json::from_slice(&call.body).unwrap_or_default();
    let status = v["Filter"]["Status"].as_str();
    let all = s.quota.assignment_creations(&model, status, std::time::Instant::now());
    let from: usize = v["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
    let size = v["MaxResults"]
        .as_u64()
        .map_or(100, |m| m.clamp(1, 100) as usize)
        .min(model.listing_page.max(1));
    let page: Vec<Value> = all
        .iter()
        .skip(from)
        .take(size)
        .map(|(id, st, date)| serde_json::json!({ "RequestId": id, "Status": st, "CreatedDate": date }))
        .collect();
    let mut out = serde_json::json!({ "AccountAssignmentsCreationStatus": page });
    if from + size < all.len() {
        out["NextToken"] = Value::from((from + size).to_string());
    }
    Some(json_answer(out))
}

/// Under the quota model, a listing of assignments without those whose creation is in progress
/// or failed (moto lists an assignment at once).
pub(super) fn quota_listing(op: &str, answer: Answer, state: &Mutex<State>) -> Answer {
    if op != "ListAccountAssignments" && op != "ListAccountAssignmentsForPrincipal" {
        return answer;
    }
    let body = quota_listed(answer.body.to_vec(), state);
    answer.with_body(body)
}

fn quota_listed(body: Vec<u8>, state: &Mutex<State>) -> Vec<u8> {
    let Ok(s) = state.lock() else { return body };
    let Some(model) = s.rules.quota.clone() else {
        return body;
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    let now = std::time::Instant::now();
    if let Some(list) = v.get_mut("AccountAssignments").and_then(Value::as_array_mut) {
        list.retain(|a| {
            let f = |k: &str| a[k].as_str().unwrap_or("");
            !s.quota
                .assignment_hidden(&model, f("AccountId"), f("PermissionSetArn"), f("PrincipalId"), now)
        });
    }
    serde_json::to_vec(&v).unwrap_or(body)
}
