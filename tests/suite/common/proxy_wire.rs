//! The fault proxy's HTTP plumbing: reading a request, naming its operation, answering, passing
//! it on to moto, and the answers it rewrites (root MFA, the root caller, provisioning).

use super::*;

/// GetAccountSummary's XML with AccountMFAEnabled set to 1.
pub(super) fn regex_lite_mfa(xml: &str) -> String {
    let key = "<key>AccountMFAEnabled</key>";
    let Some(at) = xml.find(key) else {
        return xml.to_string();
    };
    let rest = &xml[at + key.len()..];
    let (Some(open), Some(close)) = (rest.find("<value>"), rest.find("</value>")) else {
        return xml.to_string();
    };
    let start = at + key.len() + open + "<value>".len();
    let end = at + key.len() + close;
    format!("{}1{}", &xml[..start], &xml[end..])
}

/// Whether an operation can change something at AWS.
pub fn is_mutating(op: &str) -> bool {
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
pub(super) fn credentials_quoted(req: &Request) -> String {
    let key = header(&req.head, "authorization")
        .and_then(|a| a.split_once("Credential="))
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or("");
    let token = header(&req.head, "x-amz-security-token").unwrap_or("");
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

pub(super) struct Request {
    pub(super) head: Vec<String>,
    pub(super) body: Vec<u8>,
}

pub(super) fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let len = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some(Request { head, body }))
}

pub(super) fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Who signed a request and what IAM authorises it as: the access key id and the SigV4 credential
/// scope's service (`Credential=AKID/20260101/us-east-1/sso/aws4_request`) with the operation.
pub(super) fn signed_for(req: &Request, op: &str) -> (String, String) {
    let scope: Vec<&str> = header(&req.head, "authorization")
        .and_then(|a| a.split_once("Credential="))
        .map(|(_, rest)| rest.split(['/', ',']).collect())
        .unwrap_or_default();
    let key = scope.first().copied().unwrap_or("unsigned").to_string();
    let service = scope.get(3).copied().unwrap_or("unsigned");
    // A REST API names its operation by method and path (`POST /putAlternateContact`).
    let op = if op == "unknown" {
        let mut line = req.head.first().map(String::as_str).unwrap_or("").split(' ');
        format!("{} {}", line.next().unwrap_or(""), line.next().unwrap_or(""))
    } else {
        op.to_string()
    };
    (key, format!("{service}:{op}"))
}

impl super::FaultProxy {
    /// The requests seen since the last take, as (access key id, `signing-name:Operation`).
    pub fn take_signed(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .map(|mut s| std::mem::take(&mut s.signed))
            .unwrap_or_default()
    }
}

/// The operation name: from X-Amz-Target (JSON protocol) or Action= (query protocol).
pub(super) fn operation(req: &Request) -> (String, bool) {
    if let Some(t) = header(&req.head, "x-amz-target") {
        return (t.rsplit('.').next().unwrap_or(t).to_string(), true);
    }
    let body = String::from_utf8_lossy(&req.body);
    let action = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_string();
    (action, false)
}

pub(super) fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    conn.write_all(out.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

pub(super) fn json_error(conn: &mut TcpStream, status: &str, code: &str, message: &str) -> std::io::Result<()> {
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    respond(
        conn,
        status,
        &[
            ("Content-Type", "application/x-amz-json-1.1".into()),
            ("x-amzn-ErrorType", code.into()),
            ("x-amzn-RequestId", "fault-proxy".into()),
        ],
        body.as_bytes(),
    )
}

pub(super) fn forward(upstream: &str, req: &Request) -> std::io::Result<Response> {
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = String::new();
    out.push_str(&req.head[0]);
    out.push_str("\r\n");
    for h in req.head.iter().skip(1) {
        if h.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(&req.body)?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap_or("HTTP/1.1 502 Bad Gateway")
        .split_once(' ')
        .map_or("502 Bad Gateway", |(_, s)| s)
        .to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok((status, headers, body))
}

pub(super) fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = i + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// Records what permission set provisioning depends on, and answers the two calls moto gets
/// wrong (None: forward the request to moto).
pub(super) fn provisioning(op: &str, req: &Request, state: &Mutex<State>) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_slice(&req.body).ok()?;
    let ps = v["PermissionSetArn"].as_str().unwrap_or("").to_string();
    let mut s = state.lock().ok()?;
    match op {
        "UpdatePermissionSet"
        | "AttachManagedPolicyToPermissionSet"
        | "DetachManagedPolicyFromPermissionSet"
        | "PutInlinePolicyToPermissionSet"
        | "DeleteInlinePolicyFromPermissionSet"
        | "AttachCustomerManagedPolicyReferenceToPermissionSet"
        | "PutPermissionsBoundaryToPermissionSet" => {
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
        "DescribePermissionSetProvisioningStatus" => {
            let id = v["ProvisionPermissionSetRequestId"].as_str().unwrap_or("");
            Some(
                serde_json::json!({
                    "PermissionSetProvisioningStatus": { "RequestId": id, "Status": "SUCCEEDED" }
                })
                .to_string()
                .into_bytes(),
            )
        }
        "ListAccountsForProvisionedPermissionSet"
            if v["ProvisioningStatus"] == "LATEST_PERMISSION_SET_NOT_PROVISIONED" =>
        {
            let mut ids: Vec<&String> = if s.changed_sets.contains(&ps) && !s.rules.provisioning_listing_lags {
                s.assigned.get(&ps).map(|a| a.iter().collect()).unwrap_or_default()
            } else {
                Vec::new()
            };
            ids.sort();
            Some(serde_json::json!({ "AccountIds": ids }).to_string().into_bytes())
        }
        // As at AWS, an assignment provisions the set to its account (moto lists only sets
        // provisioned by ProvisionPermissionSet, and only to the caller's account).
        "ListAccountsForProvisionedPermissionSet" if v.get("ProvisioningStatus").is_none() => {
            let mut ids: Vec<&String> = s.assigned.get(&ps).map(|a| a.iter().collect()).unwrap_or_default();
            ids.sort();
            Some(serde_json::json!({ "AccountIds": ids }).to_string().into_bytes())
        }
        _ => None,
    }
}

/// GetCallerIdentity's XML with the root user's ARN and user id (the account id).
pub(super) fn root_caller(xml: &str) -> String {
    let between = |open: &str, close: &str| -> Option<(usize, usize)> {
        let a = xml.find(open)? + open.len();
        let b = a + xml[a..].find(close)?;
        Some((a, b))
    };
    let Some((a, b)) = between("<Account>", "</Account>") else {
        return xml.to_string();
    };
    let account = xml[a..b].to_string();
    let mut out = xml.to_string();
    for (open, close, value) in [
        ("<Arn>", "</Arn>", format!("arn:aws:iam::{account}:root")),
        ("<UserId>", "</UserId>", account.clone()),
    ] {
        if let Some(x) = out.find(open).map(|i| i + open.len())
            && let Some(y) = out[x..].find(close).map(|j| x + j)
        {
            out.replace_range(x..y, &value);
        }
    }
    out
}

/// Turns moto's instant SUCCEEDED into IN_PROGRESS (K reads), then SUCCEEDED or FAILED.
/// ListCreateAccountStatus asks moto for every state when the rules report all as IN_PROGRESS.
pub(super) fn rewrite_request(op: &str, mut req: Request, state: &Mutex<State>) -> Request {
    let all = state.lock().map(|s| s.rules.list_in_progress).unwrap_or(false);
    if op != "ListCreateAccountStatus" || !all {
        return req;
    }
    if let Ok(mut v) = serde_json::from_slice::<Value>(&req.body) {
        if let Some(o) = v.as_object_mut() {
            o.remove("States");
        }
        req.body = serde_json::to_vec(&v).unwrap_or(req.body);
        for h in req.head.iter_mut().skip(1) {
            if h.to_ascii_lowercase().starts_with("content-length:") {
                *h = format!("Content-Length: {}", req.body.len());
            }
        }
    }
    req
}

pub(super) fn rewrite(op: &str, body: Vec<u8>, state: &Mutex<State>) -> Vec<u8> {
    let rules = state.lock().map(|s| s.rules.clone()).unwrap_or_default();
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
    if op == "GetAccountSummary" && state.lock().map(|s| s.rules.root_mfa).unwrap_or(false) {
        let text = String::from_utf8_lossy(&body);
        let on = regex_lite_mfa(&text);
        return on.into_bytes();
    }
    if op == "GetCallerIdentity" && state.lock().map(|s| s.rules.root_caller).unwrap_or(false) {
        return root_caller(&String::from_utf8_lossy(&body)).into_bytes();
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
pub(super) fn track_assignment(op: &str, req: &Request, answer: &[u8], state: &Mutex<State>) {
    if op != "CreateAccountAssignment" {
        return;
    }
    let (Ok(asked), Ok(answered)) = (
        serde_json::from_slice::<Value>(&req.body),
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
pub(super) fn quota_answer(op: &str, req: &Request, state: &Mutex<State>) -> Option<Vec<u8>> {
    if op != "ListAccountAssignmentCreationStatus" {
        return None;
    }
    let s = state.lock().ok()?;
    let model = s.rules.quota.clone()?;
    let v: Value = serde_json::from_slice(&req.body).unwrap_or_default();
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
    Some(out.to_string().into_bytes())
}

/// Under the quota model, a listing of assignments without those whose creation is in progress
/// or failed (moto lists an assignment at once).
pub(super) fn quota_listing(op: &str, body: Vec<u8>, state: &Mutex<State>) -> Vec<u8> {
    if op != "ListAccountAssignments" && op != "ListAccountAssignmentsForPrincipal" {
        return body;
    }
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
