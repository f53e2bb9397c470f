def main(P):
    want = P.get("feature_set") or "ALL"
    created = False
    org = _organization()
    if org is None:
        try:
            org = _client("organizations").create_organization(FeatureSet=want)["Organization"]
            created = True
        except botocore.exceptions.ClientError as e:
            # Someone made it between our look and our create: take theirs.
            if _code(e) != "AlreadyInOrganizationException":
                raise
            org = _organization()
            if org is None:
                raise
    elif want == "ALL" and org.get("FeatureSet") != "ALL":
        raise Exception("organization " + org["Id"] + " has only consolidated billing; IAM Identity Center needs all "
                        "features: in the Organizations console choose Settings > Enable all features")
    return {"id": org["Id"], "management_account_id": org.get("MasterAccountId", ""),
            "feature_set": org.get("FeatureSet", ""), "created": created}
