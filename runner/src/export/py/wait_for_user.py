def main(P):
    c = _client("identitystore", P.get("region"))
    deadline = time.time() + P["_budget"]
    while True:
        uid = _user_id(c, P["identity_store_id"], P["user_name"])
        if uid:
            return {"user_id": uid}
        if time.time() > deadline:
            raise Exception("no user " + P["user_name"] + " in the identity store yet; the step tries again while its attempts last")
        time.sleep(20)
