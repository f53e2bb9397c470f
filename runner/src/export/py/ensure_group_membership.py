def main(P):
    c = _client("identitystore", P.get("region"))
    store = P["identity_store_id"]
    try:
        gid = c.get_group_id(
            IdentityStoreId=store,
            AlternateIdentifier={"UniqueAttribute": {"AttributePath": "displayName", "AttributeValue": P["group"]}},
        )["GroupId"]
    except botocore.exceptions.ClientError as e:
        if _code(e) == "ResourceNotFoundException":
            raise Exception("no group named %s in identity store %s" % (P["group"], store))
        raise
    uid = _user_id(c, store, P["user_name"])
    if not uid:
        raise Exception("no user named %s in identity store %s" % (P["user_name"], store))

    def member():
        try:
            return c.get_group_membership_id(IdentityStoreId=store, GroupId=gid, MemberId={"UserId": uid})["MembershipId"]
        except botocore.exceptions.ClientError as e:
            if _code(e) == "ResourceNotFoundException":
                return None
            raise

    found = member()
    if found:
        return {"membership_id": found, "group_id": gid, "user_id": uid, "created": False}
    try:
        mid = c.create_group_membership(IdentityStoreId=store, GroupId=gid, MemberId={"UserId": uid})["MembershipId"]
        return {"membership_id": mid, "group_id": gid, "user_id": uid, "created": True}
    except botocore.exceptions.ClientError as e:
        # One membership per user and group: made meanwhile, it is the one asked for.
        found = member() if _code(e) == "ConflictException" else None
        if not found:
            raise
        return {"membership_id": found, "group_id": gid, "user_id": uid, "created": False}
