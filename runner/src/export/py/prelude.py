def _client(service, region=None):
    # botocore's standard retries: aws:executeScript itself does not retry a throttled call.
    return boto3.client(service, region_name=region or None, config=Config(retries={"mode": "standard", "max_attempts": 8}))


def _code(e):
    if isinstance(e, botocore.exceptions.ClientError):
        return e.response.get("Error", {}).get("Code", "")
    return ""


def _plain(v):
    # What an execution can store as an output: JSON, dates as ISO text.
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if k != "ResponseMetadata"}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _pages(client, op, key, kw, token="NextToken"):
    # Every page, as the runner reads them; a repeated token is an error, not an endless loop.
    method = getattr(client, op)
    kw = dict(kw)
    out = []
    seen = set()
    while True:
        page = method(**kw)
        out.extend(page.get(key, []))
        nxt = page.get(token)
        if not nxt:
            return out
        if nxt in seen:
            raise Exception(op + " repeated a page token: the list cannot be read whole")
        seen.add(nxt)
        kw[token] = nxt


def _organization():
    try:
        return _client("organizations").describe_organization()["Organization"]
    except botocore.exceptions.ClientError as e:
        if _code(e) == "AWSOrganizationsNotInUseException":
            return None
        raise


def _user_id(c, store, name):
    try:
        return c.get_user_id(
            IdentityStoreId=store,
            AlternateIdentifier={"UniqueAttribute": {"AttributePath": "userName", "AttributeValue": name}},
        )["UserId"]
    except botocore.exceptions.ClientError as e:
        if _code(e) == "ResourceNotFoundException":
            return None
        raise


def _call(service, op, params, token):
    # A call by its API name; a listing is read to its last page and the pages' lists joined.
    method = getattr(_client(service), botocore.xform_name(op))
    params = {k: v for k, v in params.items() if v is not None}
    out = {}
    seen = set()
    while True:
        page = _plain(method(**params))
        for k, v in page.items():
            if isinstance(v, list) and isinstance(out.get(k), list):
                out[k] = out[k] + v
            elif k not in out:
                out[k] = v
        nxt = page.get(token) if token else None
        if token == "Marker" and not page.get("IsTruncated"):
            nxt = None
        if not nxt:
            break
        if nxt in seen:
            raise Exception(op + " repeated a page token: the list cannot be read whole")
        seen.add(nxt)
        params[token] = nxt
    out.pop("NextToken", None)
    out.pop("Marker", None)
    out.pop("IsTruncated", None)
    return out


def _secret(name):
    # A SecureString, read here and never returned.
    return _client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def _str(v):
    # Rhai's text of a value: () is empty, booleans are lowercase.
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _add(a, b):
    # Rhai's `+`: a string on either side joins the other's text.
    if isinstance(a, str) or isinstance(b, str):
        return _str(a) + _str(b)
    return a + b


def _get(o, k):
    # A map's missing property is (), as in Rhai.
    return o.get(k) if isinstance(o, dict) else None


def _idx(o, i):
    if isinstance(o, dict):
        return o.get(i)
    return o[i]


def _coalesce(a, b):
    return b if a is None else a
