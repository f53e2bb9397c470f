def main(P):
    me = _client("sts").get_caller_identity()["Account"]
    want = (P.get("account_id") or "").strip()
    if want and want != me:
        raise Exception("the credentials are for account " + me + ", not for account " + want
                        + " that you named: this check would report on the wrong account")
    summary = _client("iam").get_account_summary()["SummaryMap"]
    keys = summary.get("AccountAccessKeysPresent", 0) == 1
    if keys:
        print("warning: the root user of " + me + " has access keys: delete them (Security credentials > Access keys)")
    if summary.get("AccountMFAEnabled", 0) != 1:
        raise Exception("MFA is not active for the root user of " + me + " (AccountMFAEnabled = 0): sign in as root, "
                        "open Security credentials, and assign an MFA device")
    return {"mfa_enabled": True, "account_id": me, "root_access_keys": keys}
