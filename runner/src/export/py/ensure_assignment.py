def main(P):
    c = _client("sso-admin", P.get("region"))
    arn, ps = P["instance_arn"], P["permission_set_arn"]
    ptype, pid = P.get("principal_type") or "USER", P["principal_id"]
    accounts = list(P.get("account_ids") or []) + ([P["account_id"]] if P.get("account_id") else [])
    results, pending = [], []
    for acct in accounts:
        listed = _pages(c, "list_account_assignments", "AccountAssignments",
                        {"InstanceArn": arn, "AccountId": acct, "PermissionSetArn": ps})
        if any(a.get("PrincipalId") == pid and a.get("PrincipalType") == ptype for a in listed):
            results.append({"account_id": acct, "status": "exists", "request_id": ""})
            continue
        for attempt in range(6):
            try:
                st = c.create_account_assignment(InstanceArn=arn, TargetId=acct, TargetType="AWS_ACCOUNT",
                                                 PermissionSetArn=ps, PrincipalType=ptype, PrincipalId=pid)
                pending.append((acct, st["AccountAssignmentCreationStatus"]["RequestId"]))
                break
            except botocore.exceptions.ClientError as e:
                # Another change to this permission set is in progress: wait and send again.
                if _code(e) != "ConflictException" or attempt == 5:
                    raise
                time.sleep(2 ** attempt)
    deadline = time.time() + P["_budget"]
    for acct, rid in pending:
        while True:
            st = c.describe_account_assignment_creation_status(
                InstanceArn=arn, AccountAssignmentCreationRequestId=rid)["AccountAssignmentCreationStatus"]
            if st["Status"] == "SUCCEEDED":
                results.append({"account_id": acct, "status": "created", "request_id": rid})
                break
            if st["Status"] == "FAILED":
                raise Exception("the assignment in " + acct + " FAILED: " + st.get("FailureReason", ""))
            if time.time() > deadline:
                raise Exception("the assignment in " + acct + " is still in progress; the step tries again while its attempts last")
            time.sleep(5)
    return {"assignments": results, "created": len(pending)}
