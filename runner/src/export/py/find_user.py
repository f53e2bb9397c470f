def main(P):
    uid = _user_id(_client("identitystore", P.get("region")), P["identity_store_id"], P["user_name"])
    return {"found": uid is not None, "user_id": uid or ""}
