"""Drives the fan-out benchmark (see fanout.sh): one moto server, an optional delay proxy, and
three contenders doing the same work from the same starting state."""

import argparse
import shutil
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV_BIN = os.path.join(REPO, ".venv", "bin")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_moto():
    port = free_port()
    proc = subprocess.Popen([os.path.join(VENV_BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except Exception:
            time.sleep(0.05)
    raise SystemExit("moto did not start")


def reset(moto):
    urllib.request.urlopen(urllib.request.Request(moto + "/moto-api/reset", method="POST"))


class DelayProxy:
    """Adds a fixed delay to every request: a model of the round trip to a real endpoint."""

    def __init__(self, upstream, delay):
        self.upstream = upstream.replace("http://", "").split(":")
        self.delay = delay
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()
        time.sleep(0.3)
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port, limit=1 << 20))
        self.loop.run_forever()

    async def _client(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for l in lines[1:]:
                    if l.lower().startswith("content-length:"):
                        length = int(l.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                await asyncio.sleep(self.delay)
                out = [l for l in lines if l and not l.lower().startswith("connection:")]
                ur, uw = await asyncio.open_connection(self.upstream[0], int(self.upstream[1]))
                uw.write(("\r\n".join(out) + "\r\nConnection: close\r\n\r\n").encode("latin-1") + body)
                await uw.drain()
                raw = await ur.read()
                uw.close()
                h, _, b = raw.partition(b"\r\n\r\n")
                hl = h.decode("latin-1").split("\r\n")
                keep = [l for l in hl[1:] if l.split(":", 1)[0].lower() not in ("content-length", "connection", "transfer-encoding")]
                resp = "\r\n".join([hl[0]] + keep + [f"Content-Length: {len(b)}", "", ""]).encode("latin-1") + b
                writer.write(resp)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def env_for(endpoint):
    e = dict(os.environ)
    e.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
              "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "NO_COLOR": "1",
              "RUNBOOK_POLL_INITIAL_MS": "100", "RUNBOOK_POLL_CAP_MS": "1000"})
    e.pop("AWS_PROFILE", None)
    return e


SETUP = """# Setup

```aws organizations.ensure-organization id=org
```

```aws sso-admin.find-instance id=ic
```

```aws identitystore.ensure-user id=user
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "bench.admin"
display_name = "Bench Admin"
given_name = "Bench"
family_name = "Admin"
email = "bench@example.com"
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "${steps.ic.instance_arn}"
name = "AdministratorAccess"
managed_policies = ["AdministratorAccess"]
```

```rhai id=ids
#{ instance: steps.ic.instance_arn, ps: steps.ps.arn, user: steps.user.user_id }
```
"""

FANOUT = """# Fan-out

```aws sso-admin.find-instance id=ic
```

```aws identitystore.wait-for-user id=user
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "bench.admin"
timeout = "1m"
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "${steps.ic.instance_arn}"
name = "AdministratorAccess"
managed_policies = ["AdministratorAccess"]
```

```aws organizations.ensure-account id=accounts for-each='NAMES' timeout=30m
name = "${item}"
email = "aws+${item}@example.com"
```

```aws sso-admin.ensure-assignment id=assign timeout=30m
instance_arn = "${steps.ic.instance_arn}"
permission_set_arn = "${steps.ps.arn}"
principal_id = "${steps.user.user_id}"
account_ids = "${ steps.accounts.results.map(|r| r.account_id) }"
max_in_flight = 8
```
"""

BOTO3 = r'''
import sys, time, json, boto3
n, instance, ps, user = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
org = boto3.client("organizations")
sso = boto3.client("sso-admin")
ids = []
for i in range(n):
    name = f"bench-b{i:04d}-prod"
    st = org.create_account(AccountName=name, Email=f"aws+{name}@example.com")["CreateAccountStatus"]
    while st["State"] == "IN_PROGRESS":
        time.sleep(0.1)
        st = org.describe_create_account_status(CreateAccountRequestId=st["Id"])["CreateAccountStatus"]
    assert st["State"] == "SUCCEEDED", st
    ids.append(st["AccountId"])
for a in ids:
    st = sso.create_account_assignment(InstanceArn=instance, TargetId=a, TargetType="AWS_ACCOUNT",
        PermissionSetArn=ps, PrincipalType="USER", PrincipalId=user)["AccountAssignmentCreationStatus"]
    st = sso.describe_account_assignment_creation_status(InstanceArn=instance,
        AccountAssignmentCreationRequestId=st["RequestId"])["AccountAssignmentCreationStatus"]
    while st["Status"] == "IN_PROGRESS":
        time.sleep(0.1)
        st = sso.describe_account_assignment_creation_status(InstanceArn=instance,
            AccountAssignmentCreationRequestId=st["RequestId"])["AccountAssignmentCreationStatus"]
    assert st["Status"] == "SUCCEEDED", st
'''

AWSCLI = r'''
set -e
n=$1; instance=$2; ps=$3; user=$4
for i in $(seq 1 "$n"); do
  name=$(printf 'bench-c%04d-prod' "$i")
  car=$(aws organizations create-account --account-name "$name" --email "aws+$name@example.com" --query CreateAccountStatus.Id --output text)
  acct=$(aws organizations describe-create-account-status --create-account-request-id "$car" --query CreateAccountStatus.AccountId --output text)
  req=$(aws sso-admin create-account-assignment --instance-arn "$instance" --target-id "$acct" --target-type AWS_ACCOUNT \
        --permission-set-arn "$ps" --principal-type USER --principal-id "$user" --query AccountAssignmentCreationStatus.RequestId --output text)
  aws sso-admin describe-account-assignment-creation-status --instance-arn "$instance" \
        --account-assignment-creation-request-id "$req" --query AccountAssignmentCreationStatus.Status --output text >/dev/null
done
'''


def timed(cmd, env, cwd):
    t0 = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    rss_kb = int(out.stderr.strip().splitlines()[-1])
    return wall, rss_kb


def setup(runbook, endpoint, work):
    path = os.path.join(work, "setup.md")
    with open(path, "w") as f:
        f.write(SETUP)
    out = subprocess.run([runbook, "run", path, "--restart", "--state-dir", os.path.join(work, "state")],
                         env=env_for(endpoint), capture_output=True, text=True, cwd=work)
    if out.returncode != 0:
        sys.exit("setup failed:\n" + out.stdout + out.stderr)
    state_dirs = os.listdir(os.path.join(work, "state"))
    # STATE/<runbook>-<hash>/runs/<run>/state.json (the run is `default`).
    top = os.path.join(work, "state", [d for d in state_dirs if d.startswith("setup")][0])
    st = json.load(open(os.path.join(top, "runs", "default", "state.json")))
    ids = st["steps"]["ids"]["outputs"]
    return ids["instance"], ids["ps"], ids["user"]


def boto3_run(runbook, moto, endpoint, n, work):
    """The sequential boto3 script on a fresh emulator: (wall, rss)."""
    reset(moto)
    inst, ps, user = setup(runbook, endpoint, work)
    script = os.path.join(work, "b.py")
    open(script, "w").write(BOTO3)
    return timed([os.path.join(VENV_BIN, "python"), script, str(n), inst, ps, user], env_for(endpoint), work)


def round_(runbook, moto, endpoint, n, sub, work, label):
    rows = {}
    # (a) runbook
    reset(moto)
    setup(runbook, endpoint, work)
    names = json.dumps([f"bench-a{i:04d}-prod" for i in range(n)])
    path = os.path.join(work, "fanout.md")
    with open(path, "w") as f:
        f.write(FANOUT.replace("NAMES", names))
    rows["runbook"] = timed([runbook, "run", path, "--restart", "--state-dir", os.path.join(work, "state")], env_for(endpoint), work)
    # (b) boto3, sequential, checking each request's status
    rows["boto3"] = boto3_run(runbook, moto, endpoint, n, work)
    # (c) aws-cli loop on a subset, scaled
    reset(moto)
    inst, ps, user = setup(runbook, endpoint, work)
    sh = os.path.join(work, "c.sh")
    open(sh, "w").write(AWSCLI)
    env = env_for(endpoint)
    env["PATH"] = VENV_BIN + os.pathsep + env["PATH"]
    wall, rss = timed(["bash", sh, str(sub), inst, ps, user], env, work)
    rows["aws-cli"] = (wall, rss)
    r, b, c = rows["runbook"][0], rows["boto3"][0], rows["aws-cli"][0]
    print(f"\n{label}: N = {n} accounts + {n} assignments ({os.cpu_count()} cores)")
    print(f"  runbook run        {r:9.1f} s   {r * 1000 / n:7.1f} ms/item   peak RSS {rows['runbook'][1] / 1024:6.1f} MB")
    print(f"  boto3 sequential   {b:9.1f} s   {b * 1000 / n:7.1f} ms/item")
    print(f"  aws-cli loop       {c:9.1f} s   {c * 1000 / sub:7.1f} ms/item   (measured in full on {sub} accounts)")
    print(f"  ratio runbook/boto3   {r / b:.3f}")
    print(f"  ratio per item runbook/aws-cli {(r / n) / (c / sub):.4f}")
    sys.stdout.flush()
    return rows


def journal_bytes(work):
    total = 0
    for root, _, files in os.walk(os.path.join(work, "state")):
        for f in files:
            if root.split(os.sep)[-1].startswith("fanout"):
                total += os.path.getsize(os.path.join(root, f))
    return total


def scaling(runbook, moto, work, sizes):
    """runbook alone at several N, straight to moto: per-item wall time and journal bytes."""
    print("\njournal at scale (runbook run, straight to moto; accounts + assignments per item)")
    print("  (boto3 ms/item: the same work from a sequential script with no journal, for moto's own growth)")
    print(f"  {'N':>6} {'wall s':>8} {'ms/item':>8} {'journal KB':>11} {'bytes/item':>11} {'peak RSS MB':>12} {'boto3 ms/item':>14}")
    for n in sizes:
        reset(moto)
        shutil.rmtree(os.path.join(work, "state"), ignore_errors=True)
        setup(runbook, moto, work)
        names = json.dumps([f"bench-s{i:04d}-prod" for i in range(n)])
        path = os.path.join(work, "fanout.md")
        with open(path, "w") as f:
            f.write(FANOUT.replace("NAMES", names))
        wall, rss = timed([runbook, "run", path, "--restart", "--state-dir", os.path.join(work, "state")],
                          env_for(moto), work)
        jb = journal_bytes(work)
        b, _ = boto3_run(runbook, moto, moto, n, work)
        print(f"  {n:>6} {wall:>8.1f} {wall * 1000 / n:>8.2f} {jb / 1024:>11.0f} {jb / n:>11.0f} {rss / 1024:>12.1f}"
              f" {b * 1000 / n:>14.2f}")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runbook", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--subset", type=int, default=20)
    ap.add_argument("--delay-ms", type=int, default=50)
    ap.add_argument("--scaling", action="store_true",
                    help="only runbook, at N = 200 and N = 1000: per-item cost of the journal and peak RSS")
    ap.add_argument("--quota", action="store_true",
                    help="the quota model: runbook against a concurrent boto3 script at AWS's limits")
    ap.add_argument("--proxy-bin", help="the quota proxy (examples/quota_proxy.rs, built --release)")
    ap.add_argument("--sizes", default="200,1000", help="assignment counts for --quota")
    ap.add_argument("--account-sizes", default="200,1000", help="account counts for --quota")
    ap.add_argument("--settle-ms", type=int, default=1000)
    args = ap.parse_args()
    if args.quota:
        import quota
        with tempfile.TemporaryDirectory() as work:
            sizes = lambda text: [int(x) for x in text.split(",") if x and int(x) > 0]
            quota.main(args.runbook, args.proxy_bin, work, sizes(args.sizes), sizes(args.account_sizes),
                       args.subset, args.settle_ms)
        return
    moto_proc, moto = start_moto()
    try:
        with tempfile.TemporaryDirectory() as work:
            if args.scaling:
                scaling(args.runbook, moto, work, [200, 1000])
                return
            round_(args.runbook, moto, moto, args.n, args.subset, work, "straight to moto")
            proxy = DelayProxy(moto, args.delay_ms / 1000)
            round_(args.runbook, moto, proxy.url, args.n, args.subset, work, f"through a {args.delay_ms} ms delay proxy")
    finally:
        moto_proc.kill()


if __name__ == "__main__":
    main()
