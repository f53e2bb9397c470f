def main(P):
    me = _client("sts").get_caller_identity()
    arn = me["Arn"]
    resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else ""
    parts = resource.split("/")
    head, rest = parts[0], parts[1:]
    if head == "root":
        kind, name = "root", "root"
    elif head == "user":
        kind, name = "iam-user", rest[-1] if rest else ""
    elif head == "federated-user":
        kind, name = "federated", "/".join(rest)
    elif head == "assumed-role":
        role = rest[0] if rest else ""
        if role.startswith("AWSReservedSSO_"):
            ps = role[len("AWSReservedSSO_"):].rsplit("_", 1)[0]
            kind, name = "identity-center", ps + "/" + (rest[1] if len(rest) > 1 else "")
        else:
            kind, name = "assumed-role", "/".join(rest)
    else:
        kind, name = "unknown", resource
    creds = boto3.Session().get_credentials()
    key = creds.access_key if creds else ""
    if key.startswith("AKIA"):
        credentials = "long-term"
    elif key.startswith("ASIA") or (creds is not None and creds.token):
        credentials = "temporary"
    else:
        credentials = "unknown"
    return {"account_id": me["Account"], "arn": arn, "user_id": me["UserId"], "is_root": kind == "root",
            "kind": kind, "name": name, "credentials": credentials}
