def main(P):
    summary = _client("iam").get_account_summary()["SummaryMap"]
    roles = summary.get("Roles", 0)
    quota = summary.get("RolesQuota", 0)
    free = quota - roles
    need = P.get("min_free", 10)
    if free < need:
        raise Exception("only " + str(free) + " IAM roles left (" + str(roles) + " of " + str(quota) + "); the runbook needs "
                        + str(need) + ": delete unused roles or request a quota increase (Service Quotas, IAM, L-FE177D64)")
    return {"roles": roles, "quota": quota, "free": free}
