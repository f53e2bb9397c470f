def main(P):
    region = P.get("region") or None
    c = _client("sso-admin", region)
    deadline = time.time() + P["_budget"]
    while True:
        found = None
        for i in _pages(c, "list_instances", "Instances", {}):
            if found is None and i.get("Status", "ACTIVE") == "ACTIVE" and i.get("InstanceArn") and i.get("IdentityStoreId"):
                found = i
        if found is not None:
            break
        if not P.get("wait"):
            raise Exception("IAM Identity Center is not enabled in " + str(region or "this region")
                            + ": open its console in your home region and choose Enable")
        if time.time() > deadline:
            raise Exception("IAM Identity Center is not enabled yet; the step tries again while its attempts last")
        time.sleep(15)
    store = found["IdentityStoreId"]
    return {"instance_arn": found["InstanceArn"], "identity_store_id": store,
            "region": region or boto3.Session().region_name or "",
            "portal_url": P.get("portal_url") or ("https://" + store + ".awsapps.com/start")}
