def main(P):
    c = _client("sso-admin", P.get("region"))
    arn, ps = P["instance_arn"], P["permission_set_arn"]
    ptype, pid = P.get("principal_type") or "USER", P["principal_id"]
    accounts = list(P.get("account_ids") or []) + ([P["account_id"]] if P.get("account_id") else [])
    results, pending = [], []
    for acct in accounts:
        listed = _pages(c, "list_account_assignments", "AccountAssignments",
                        {"InstanceArn": arn, "AccountId": acct, "PermissionSetArn": ps})
        if not any(a.get("PrincipalId") == pid and a.get("PrincipalType") == ptype for a in listed):
            results.append({"account_id": acct, "status": "absent", "request_id": ""})
            continue
        st = c.delete_account_assignment(InstanceArn=arn, TargetId=acct, TargetType="AWS_ACCOUNT",
                                         PermissionSetArn=ps, PrincipalType=ptype, PrincipalId=pid)
        pending.append((acct, st["AccountAssignmentDeletionStatus"]["RequestId"]))
    deadline = time.time() + P["_budget"]
    for acct, rid in pending:
        while True:
            st = c.describe_account_assignment_deletion_status(
                InstanceArn=arn, AccountAssignmentDeletionRequestId=rid)["AccountAssignmentDeletionStatus"]
            if st["Status"] == "SUCCEEDED":
                results.append({"account_id": acct, "status": "removed", "request_id": rid})
                break
            if st["Status"] == "FAILED":
                raise Exception("removing the assignment in " + acct + " FAILED: " + st.get("FailureReason", ""))
            if time.time() > deadline:
                raise Exception("removing the assignment in " + acct + " is still in progress; the step tries again")
            time.sleep(5)
    return {"assignments": results, "removed": len(pending)}
