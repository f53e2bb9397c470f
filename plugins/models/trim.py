#!/usr/bin/env python3
"""Trims botocore's service models to what `aws SERVICE:Operation` steps need.

Usage: python3 plugins/models/trim.py [BOTOCORE_DATA_DIR]
(default: the data directory of the botocore importable by this python).

Keeps per service: the protocol metadata (protocol, apiVersion, endpointPrefix, signingName,
targetPrefix, jsonVersion, globalEndpoint), every operation's input and output shape (and the
query protocol's resultWrapper), and every shape reachable from them with its type, members
(shape, locationName, flattened), required members, list members, map keys and values, enums, the
bounds (min and max: a number's value, a string's or a list's length) and
the document flag. Documentation, examples, errors and endpoint rules are dropped.
"""
import glob
import gzip
import json
import os
import sys

SERVICES = ["organizations", "sso-admin", "identitystore", "support", "iam", "sts"]
META = ["protocol", "apiVersion", "endpointPrefix", "signingName", "targetPrefix", "jsonVersion", "globalEndpoint", "serviceId"]
SHAPE_KEYS = ["type", "required", "enum", "flattened", "document", "min", "max"]
REF_KEYS = ["shape", "locationName", "flattened"]


def load(data, service):
    versions = sorted(glob.glob(os.path.join(data, service, "*", "service-2.json*")))
    path = versions[-1]
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    return json.loads(raw), os.path.basename(os.path.dirname(path))


def ref(r):
    return {k: r[k] for k in REF_KEYS if k in r}


def trim(model):
    out = {"metadata": {k: model["metadata"][k] for k in META if k in model["metadata"]}, "operations": {}, "shapes": {}}
    keep = set()
    for name, op in sorted(model["operations"].items()):
        o = {}
        if "input" in op:
            o["input"] = op["input"]["shape"]
            keep.add(o["input"])
        if "output" in op:
            o["output"] = op["output"]["shape"]
            keep.add(o["output"])
            if "resultWrapper" in op["output"]:
                o["resultWrapper"] = op["output"]["resultWrapper"]
        out["operations"][name] = o
    todo = list(keep)
    while todo:
        name = todo.pop()
        s = model["shapes"][name]
        t = {k: s[k] for k in SHAPE_KEYS if k in s}
        if "members" in s:
            t["members"] = {m: ref(r) for m, r in s["members"].items()}
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
    if len(sys.argv) > 1:
        data = sys.argv[1]
    else:
        import botocore
        data = os.path.join(os.path.dirname(botocore.__file__), "data")
    here = os.path.dirname(os.path.abspath(__file__))
    for service in SERVICES:
        model, version = load(data, service)
        trimmed = trim(model)
        trimmed["metadata"]["source"] = f"botocore data/{service}/{version}/service-2.json"
        with open(os.path.join(here, f"{service}.json"), "w") as f:
            json.dump(trimmed, f, separators=(",", ":"), sort_keys=False)
            f.write("\n")
        print(f"{service}: {len(trimmed['operations'])} operations, {len(trimmed['shapes'])} shapes")


if __name__ == "__main__":
    main()
