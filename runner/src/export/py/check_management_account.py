def main(P):
    me = _client("sts").get_caller_identity()["Account"]
    org = _organization()
    if org is None:
        if not P.get("organization_optional"):
            raise Exception("account " + me + " is in no organization; create one (Part 2 does) or run from the management account")
        print("account " + me + " is in no organization yet: Part 2 creates one and makes this account its management account")
        return {"account_id": me, "management_account_id": "", "in_organization": False, "organization_id": "",
                "feature_set": ""}
    if org["MasterAccountId"] != me:
        raise Exception("account " + me + " is a member of organization " + org["Id"] + "; its management account is "
                        + org["MasterAccountId"] + ": run from there")
    if P.get("require_all_features") and org.get("FeatureSet") != "ALL":
        raise Exception("organization " + org["Id"] + " has only consolidated billing; IAM Identity Center needs all features")
    return {"account_id": me, "management_account_id": org["MasterAccountId"], "in_organization": True,
            "organization_id": org["Id"], "feature_set": org.get("FeatureSet", "")}
