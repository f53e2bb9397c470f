def main(P):
    c = _client("identitystore", P.get("region"))
    uid = _user_id(c, P["identity_store_id"], P["user_name"])
    if not uid:
        return {"user_id": "", "removed": False}
    try:
        c.delete_user(IdentityStoreId=P["identity_store_id"], UserId=uid)
    except botocore.exceptions.ClientError as e:
        if _code(e) != "ResourceNotFoundException":
            raise
        return {"user_id": uid, "removed": False}
    return {"user_id": uid, "removed": True}
