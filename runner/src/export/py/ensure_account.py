def main(P):
    import re
    name, email = P["name"], P["email"]
    if P.get("naming_pattern") and not re.fullmatch(P["naming_pattern"], name):
        raise Exception(name + " does not match the naming standard " + P["naming_pattern"])
    org = _client("organizations")
    # CreateAccount has no idempotency token: never sent twice by botocore's retries.
    once = boto3.client("organizations", config=Config(retries={"mode": "standard", "max_attempts": 1}))
    for a in _pages(org, "list_accounts", "Accounts", {}):
        if a.get("Email", "").lower() == email.lower():
            if a.get("Name") != name:
                raise Exception("the account with email " + email + " is named " + a.get("Name", "") + ", not " + name)
            return {"account_id": a["Id"], "create_request_id": "", "created": False}
    request = None
    for st in _pages(org, "list_create_account_status", "CreateAccountStatuses", {"States": ["IN_PROGRESS"]}):
        if st.get("AccountName") == name:
            request = st["Id"]
    if request is None:
        kw = {"Email": email, "AccountName": name}
        if P.get("role_name"):
            kw["RoleName"] = P["role_name"]
        request = once.create_account(**kw)["CreateAccountStatus"]["Id"]
    deadline = time.time() + P["_budget"]
    while True:
        st = org.describe_create_account_status(CreateAccountRequestId=request)["CreateAccountStatus"]
        if st["State"] == "SUCCEEDED":
            return {"account_id": st["AccountId"], "create_request_id": request, "created": True}
        if st["State"] == "FAILED":
            raise Exception("creating " + name + " FAILED: " + st.get("FailureReason", ""))
        if time.time() > deadline:
            raise Exception("creating " + name + " is still in progress; the step tries again while its attempts last")
        time.sleep(10)
