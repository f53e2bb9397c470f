def main(P):
    c = _client("identitystore", P.get("region"))
    store, name = P["identity_store_id"], P["user_name"]
    uid = _user_id(c, store, name)
    if uid:
        _ours(c, store, uid, P)
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
        _ours(c, store, uid, P)
        return {"user_id": uid, "created": False}


def _ours(c, store, uid, P):
    # A user of this name is this step's only when one of its emails is the step's (or one the
    # step adopts): another person's user of the same name must not be given this step's access.
    emails = [e.get("Value", "") for e in c.describe_user(IdentityStoreId=store, UserId=uid).get("Emails", [])]
    mine = [P["email"]] + list(P.get("adopt") or [])
    if not any(e.lower() == m.lower() for e in emails for m in mine):
        raise Exception(
            "user %s exists with another email (%s), not %s: someone else's user; add its email to adopt if it is this person's"
            % (P["user_name"], ", ".join(emails) or "none", P["email"])
        )
