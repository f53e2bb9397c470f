def main(P):
    c = _client("identitystore", P.get("region"))
    store, name = P["identity_store_id"], P["user_name"]
    uid = _user_id(c, store, name)
    if uid:
        return {"user_id": uid, "created": False}
    try:
        uid = c.create_user(
            IdentityStoreId=store, UserName=name, DisplayName=P["display_name"],
            Name={"GivenName": P["given_name"], "FamilyName": P["family_name"]},
            Emails=[{"Value": P["email"], "Type": "work", "Primary": True}],
        )["UserId"]
        return {"user_id": uid, "created": True}
    except botocore.exceptions.ClientError as e:
        # Made meanwhile (UNIQUENESS_CONSTRAINT_VIOLATION): use it.
        if _code(e) != "ConflictException":
            raise
        uid = _user_id(c, store, name)
        if not uid:
            raise
        return {"user_id": uid, "created": False}
