#!/usr/bin/env python3
"""Trims botocore's service models to what `aws SERVICE:Operation` steps read, for every service.

Usage: python3 plugins/models/trim.py BOTOCORE_DATA_DIR
(BOTOCORE_DATA_DIR is `botocore/data` of an unpacked botocore wheel; see README.md).

Writes `aws/NAME.json.gz` (one per service, loaded lazily by the binary) and `aws/index.rs`
(the names and files, sorted: the binary lists the services without opening a model).

Keeps per service: the protocol (the first of the model's `protocols` that we speak), apiVersion,
endpointPrefix, signingName, targetPrefix, jsonVersion, xmlNamespace, uid (the API reference's
address) and the service's full name; from endpoints.json, the host and signing region of a
global service. Per operation: input and output shapes, the HTTP method and request URI, the query
protocol's resultWrapper, the `readonly` marker, the host prefix, whether a checksum is required,
and the operation's paginator (input_token, output_token, more_results, result_key). Per shape
reachable from an operation: type, members (shape, location, locationName, flattened,
xmlNamespace, xmlAttribute, queryName, jsonvalue, hostLabel, idempotencyToken), required members,
list members, map keys and values, enums, bounds (min, max), payload, the `sensitive`,
`streaming`, `eventstream`, `document` and `union` flags, timestampFormat, locationName,
xmlNamespace, and (rest-xml) the members' order. Documentation, examples, errors, waiters and endpoint rules are dropped.
"""
import glob
import gzip
import json
import os
import sys

SPOKEN = ["json", "rest-json", "rest-xml", "query", "ec2"]
META = ["apiVersion", "endpointPrefix", "signingName", "targetPrefix", "jsonVersion", "xmlNamespace", "uid",
        "serviceFullName", "signatureVersion", "checksumFormat"]
SHAPE_KEYS = ["type", "required", "enum", "flattened", "document", "min", "max", "payload", "sensitive",
              "streaming", "eventstream", "union", "timestampFormat", "locationName", "xmlNamespace"]
REF_KEYS = ["shape", "location", "locationName", "flattened", "xmlNamespace", "xmlAttribute", "queryName",
            "jsonvalue", "hostLabel", "idempotencyToken", "streaming"]
PAGE_KEYS = ["input_token", "output_token", "more_results", "result_key"]


def newest(data, service):
    versions = sorted(glob.glob(os.path.join(data, service, "*", "service-2.json*")))
    return os.path.dirname(versions[-1]) if versions else None


def read(path):
    if os.path.exists(path + ".gz"):
        return json.loads(gzip.open(path + ".gz").read())
    if os.path.exists(path):
        return json.load(open(path))
    return None


def ref(r):
    return {k: r[k] for k in REF_KEYS if k in r}


def global_endpoint(endpoints, prefix):
    """(host, signing region) of a service that answers in one place only, from endpoints.json."""
    svc = endpoints["partitions"][0]["services"].get(prefix)
    if not svc:
        return None
    pe = svc.get("partitionEndpoint")
    eps = svc.get("endpoints", {})
    if pe and (svc.get("isRegionalized") is False or list(eps) == [pe]):
        e = eps.get(pe, {})
        region = e.get("credentialScope", {}).get("region", "us-east-1")
        return {"host": e.get("hostname", f"{prefix}.{region}.amazonaws.com"), "region": region}
    regions = [r for r in eps if not r.endswith("-fips") and "fips" not in r]
    if len(regions) == 1 and not pe:
        # Offered in one region only (cur, route53domains): every call goes there.
        r = regions[0]
        return {"host": eps[r].get("hostname", f"{prefix}.{r}.amazonaws.com"), "region": r}
    return None


def trim(model, paginators, endpoints):
    meta = model["metadata"]
    protocols = meta.get("protocols", [meta["protocol"]])
    spoken = [p for p in protocols if p in SPOKEN]
    out = {"metadata": {k: meta[k] for k in META if k in meta}, "operations": {}, "shapes": {}}
    # A service whose only protocol is CBOR is listed (check knows it) and refused when called.
    out["metadata"]["protocol"] = spoken[0] if spoken else protocols[0]
    if out["metadata"]["protocol"] == "json" and "jsonVersion" not in meta:
        out["metadata"]["jsonVersion"] = "1.0"
    g = global_endpoint(endpoints, meta["endpointPrefix"])
    if g:
        out["metadata"]["global"] = g
    keep = set()
    for name, op in sorted(model["operations"].items()):
        o = {"http": {k: op["http"][k] for k in ("method", "requestUri", "responseCode") if k in op.get("http", {})}}
        if "input" in op:
            o["input"] = op["input"]["shape"]
            keep.add(o["input"])
        if "output" in op:
            o["output"] = op["output"]["shape"]
            keep.add(o["output"])
            if "resultWrapper" in op["output"]:
                o["resultWrapper"] = op["output"]["resultWrapper"]
        if op.get("readonly"):
            o["readonly"] = True
        if "hostPrefix" in op.get("endpoint", {}):
            o["hostPrefix"] = op["endpoint"]["hostPrefix"]
        if op.get("httpChecksumRequired") or op.get("httpChecksum", {}).get("requestChecksumRequired"):
            o["checksumRequired"] = True
        page = paginators.get(name)
        if page:
            o["paginator"] = {k: page[k] for k in PAGE_KEYS if k in page}
        out["operations"][name] = o
    todo = list(keep)
    while todo:
        name = todo.pop()
        s = model["shapes"][name]
        t = {k: s[k] for k in SHAPE_KEYS if k in s}
        if "members" in s:
            t["members"] = {m: ref(r) for m, r in s["members"].items()}
            # XML bodies are read against a schema: the binary keeps members sorted by name, so
            # the model's order goes along where it differs.
            if out["metadata"]["protocol"] == "rest-xml" and list(s["members"]) != sorted(s["members"]):
                t["order"] = list(s["members"])
        for k in ("member", "key", "value"):
            if k in s:
                t[k] = ref(s[k])
        out["shapes"][name] = t
        refs = list(t.get("members", {}).values()) + [t[k] for k in ("member", "key", "value") if k in t]
        for r in refs:
            if r["shape"] not in keep:
                keep.add(r["shape"])
                todo.append(r["shape"])
    out["shapes"] = dict(sorted(out["shapes"].items()))
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    data = sys.argv[1]
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aws")
    os.makedirs(here, exist_ok=True)
    for old in glob.glob(os.path.join(here, "*.json.gz")):
        os.remove(old)
    endpoints = json.load(open(os.path.join(data, "endpoints.json")))
    names = []
    for service in sorted(os.listdir(data)):
        folder = newest(data, service)
        if folder is None:
            continue
        model = read(os.path.join(folder, "service-2.json"))
        pages = (read(os.path.join(folder, "paginators-1.json")) or {}).get("pagination", {})
        trimmed = trim(model, pages, endpoints)
        trimmed["metadata"]["source"] = f"botocore data/{service}/{os.path.basename(folder)}/service-2.json"
        text = json.dumps(trimmed, separators=(",", ":"), sort_keys=False).encode()
        # mtime=0: the same models make the same bytes.
        with open(os.path.join(here, f"{service}.json.gz"), "wb") as f:
            with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as z:
                z.write(text)
        m = trimmed["metadata"]
        names.append((service, m["protocol"], len(trimmed["operations"]), m.get("uid", ""),
                      m.get("global", {}).get("region", "")))
    # Included by plugins/src/call/model.rs; paths are relative to this file.
    with open(os.path.join(here, "index.rs"), "w") as f:
        f.write("// Generated by plugins/models/trim.py: the embedded models, sorted by name.\n")
        f.write("// (service, protocol, operations, API reference uid, global service's region, model)\n&[\n")
        for n, protocol, ops, uid, region in names:
            f.write(f'    ("{n}", "{protocol}", {ops}, "{uid}", "{region}", include_bytes!("{n}.json.gz")),\n')
        f.write("]\n")
    print(f"{len(names)} services")


if __name__ == "__main__":
    main()
