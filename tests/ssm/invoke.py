"""The simulator's AWS calls, made with boto3 against the emulator (AWS_ENDPOINT_URL).

cdk-ssm-documents calls AWS through an invoker; its own builds SDK v3 clients by guessing
package names (and misses sso-admin and sts), so ours hands each call to boto3, the SDK the
exported scripts use. Reads one JSON request {service, api, params} on stdin, writes the
response (or {"error": code, "message": ...}) as JSON on stdout.
"""
import json
import sys

import boto3
import botocore
import botocore.exceptions


def plain(v):
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items() if k != "ResponseMetadata"}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def main():
    req = json.load(sys.stdin)
    api = req["api"][:1].upper() + req["api"][1:]
    client = boto3.client(req["service"])
    try:
        out = getattr(client, botocore.xform_name(api))(**req.get("params", {}))
    except botocore.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        json.dump({"error": err.get("Code", ""), "message": err.get("Message", str(e))}, sys.stdout)
        return
    json.dump(plain(out), sys.stdout)


main()
