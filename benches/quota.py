"""The fan-out at AWS's own limits (see fanout.sh --quota): runbook and the script a careful
operator writes (boto3, adaptive retries, a thread pool as wide as the service's in-progress cap,
each worker creating one thing and polling it), both through the quota model of the tests
(examples/quota_proxy.rs: a token bucket per API family, a cap on creations in progress, creations
that settle after --settle-ms), in front of one moto server."""

import json
import os
import subprocess
import sys
import time
import urllib.request

from fanout import VENV_BIN, env_for, reset, setup, start_moto

# The published limits the plugins declare (plugins/src/aws/*.rs QUOTAS), which the proxy plays.
SSO_RATE, SSO_CAP = 20.0, 15
ORG_RATE, ORG_CAP = 10.0, 5

ASSIGN = """# Assign

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

```aws sso-admin.ensure-assignment id=assign timeout=60m
instance_arn = "${steps.ic.instance_arn}"
permission_set_arn = "${steps.ps.arn}"
principal_id = "${steps.user.user_id}"
account_ids = IDS
```
"""

ACCOUNTS = """# Accounts

```aws organizations.ensure-account id=accounts for-each='NAMES' timeout=60m
name = "${item}"
email = "aws+${item}@example.com"
```
"""

BOTO3_ASSIGN = r'''
import sys, time, json, boto3
from concurrent.futures import ThreadPoolExecutor
from botocore.config import Config
from botocore.exceptions import ClientError
instance, ps, user, width = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ids = json.load(open(sys.argv[5]))
sso = boto3.client("sso-admin", config=Config(retries={"mode": "adaptive", "max_attempts": 10},
                                              max_pool_connections=width))
def one(a):
    for attempt in range(30):
        try:
            st = sso.create_account_assignment(InstanceArn=instance, TargetId=a, TargetType="AWS_ACCOUNT",
                PermissionSetArn=ps, PrincipalType="USER", PrincipalId=user)["AccountAssignmentCreationStatus"]
            break
        except ClientError as e:
            if e.response["Error"]["Code"] != "ConflictException":
                raise
            time.sleep(0.2 * (attempt + 1))
    while st["Status"] == "IN_PROGRESS":
        time.sleep(0.5)
        st = sso.describe_account_assignment_creation_status(InstanceArn=instance,
            AccountAssignmentCreationRequestId=st["RequestId"])["AccountAssignmentCreationStatus"]
    assert st["Status"] == "SUCCEEDED", st
with ThreadPoolExecutor(width) as pool:
    list(pool.map(one, ids))
'''

BOTO3_ACCOUNTS = r'''
import sys, time, json, boto3
from concurrent.futures import ThreadPoolExecutor
from botocore.config import Config
names, width = json.load(open(sys.argv[1])), int(sys.argv[2])
org = boto3.client("organizations", config=Config(retries={"mode": "adaptive", "max_attempts": 10},
                                                   max_pool_connections=width))
def one(name):
    st = org.create_account(AccountName=name, Email=f"aws+{name}@example.com")["CreateAccountStatus"]
    while st["State"] == "IN_PROGRESS":
        time.sleep(0.5)
        st = org.describe_create_account_status(CreateAccountRequestId=st["Id"])["CreateAccountStatus"]
    assert st["State"] == "SUCCEEDED", st
with ThreadPoolExecutor(width) as pool:
    list(pool.map(one, names))
'''

AWSCLI_ASSIGN = r'''
set -e
instance=$1; ps=$2; user=$3; shift 3
for acct in "$@"; do
  req=$(aws sso-admin create-account-assignment --instance-arn "$instance" --target-id "$acct" --target-type AWS_ACCOUNT \
        --permission-set-arn "$ps" --principal-type USER --principal-id "$user" --query AccountAssignmentCreationStatus.RequestId --output text)
  until [ "$(aws sso-admin describe-account-assignment-creation-status --instance-arn "$instance" \
        --account-assignment-creation-request-id "$req" --query AccountAssignmentCreationStatus.Status --output text)" = SUCCEEDED ]; do
    sleep 0.5
  done
done
'''


class Proxy:
    def __init__(self, binary, moto, settle_ms):
        self.proc = subprocess.Popen([binary, "--upstream", moto, "--settle-ms", str(settle_ms)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise SystemExit(f"quota proxy did not start: {line!r}")
        self.url = line.split()[-1]

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(self.url + "/quota-proxy/reset", method="POST"))

    def stats(self):
        return json.load(urllib.request.urlopen(self.url + "/quota-proxy/stats"))

    def stop(self):
        self.proc.kill()


def quota_env(endpoint):
    e = env_for(endpoint)
    # The real poll settings: what is measured is runbook as shipped.
    e.pop("RUNBOOK_POLL_INITIAL_MS", None)
    e.pop("RUNBOOK_POLL_CAP_MS", None)
    return e


def run(cmd, env, cwd):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return wall


def counted(stats, ops, family):
    calls = sum(stats["calls"].get(op, 0) for op in ops)
    q = stats["quota"]
    return calls, q["throttled"].get(family, 0), sum(q["refused"].values()), max(q["max_in_progress"].values() or [0])


ASSIGN_OPS = ["CreateAccountAssignment", "DescribeAccountAssignmentCreationStatus",
              "ListAccountAssignmentCreationStatus", "ListAccountAssignmentsForPrincipal"]
ACCOUNT_OPS = ["CreateAccount", "DescribeCreateAccountStatus", "ListAccounts", "ListCreateAccountStatus"]


def assignments(runbook, moto, proxy, n, settle, work, rows):
    ids = [str(100000000000 + i) for i in range(n)]
    floor = max(2 * n / SSO_RATE, n * settle / SSO_CAP)
    # runbook
    reset(moto)
    inst, ps, user = setup(runbook, moto, work)
    path = os.path.join(work, "assign.md")
    open(path, "w").write(ASSIGN.replace("IDS", json.dumps(ids)))
    proxy.reset()
    wall = run([runbook, "run", path, "--restart", "--state-dir", os.path.join(work, "state")], quota_env(proxy.url), work)
    rows.append(("assignments", "runbook run", n, wall, floor) + counted(proxy.stats(), ASSIGN_OPS, "sso-admin"))
    # boto3, concurrent
    reset(moto)
    inst, ps, user = setup(runbook, moto, work)
    script, idfile = os.path.join(work, "ba.py"), os.path.join(work, "ids.json")
    open(script, "w").write(BOTO3_ASSIGN)
    json.dump(ids, open(idfile, "w"))
    proxy.reset()
    wall = run([os.path.join(VENV_BIN, "python"), script, inst, ps, user, str(SSO_CAP), idfile], quota_env(proxy.url), work)
    rows.append(("assignments", f"boto3 x{SSO_CAP} adaptive", n, wall, floor) + counted(proxy.stats(), ASSIGN_OPS, "sso-admin"))


def awscli(runbook, moto, proxy, n, settle, work, rows):
    ids = [str(200000000000 + i) for i in range(n)]
    reset(moto)
    inst, ps, user = setup(runbook, moto, work)
    sh = os.path.join(work, "c.sh")
    open(sh, "w").write(AWSCLI_ASSIGN)
    env = quota_env(proxy.url)
    env["PATH"] = VENV_BIN + os.pathsep + env["PATH"]
    proxy.reset()
    wall = run(["bash", sh, inst, ps, user] + ids, env, work)
    floor = max(2 * n / SSO_RATE, n * settle / SSO_CAP)
    rows.append(("assignments", "aws-cli loop", n, wall, floor) + counted(proxy.stats(), ASSIGN_OPS, "sso-admin"))


def accounts(runbook, moto, proxy, n, settle, work, rows):
    floor = max(2 * n / ORG_RATE, n * settle / ORG_CAP)
    reset(moto)
    setup(runbook, moto, work)  # the organization
    names = [f"bench-q{i:04d}-prod" for i in range(n)]
    path = os.path.join(work, "accounts.md")
    open(path, "w").write(ACCOUNTS.replace("NAMES", json.dumps(names)))
    proxy.reset()
    wall = run([runbook, "run", path, "--restart", "--state-dir", os.path.join(work, "state")], quota_env(proxy.url), work)
    rows.append(("accounts", "runbook run", n, wall, floor) + counted(proxy.stats(), ACCOUNT_OPS, "organizations"))
    reset(moto)
    setup(runbook, moto, work)
    names = [f"bench-r{i:04d}-prod" for i in range(n)]
    script, nf = os.path.join(work, "bo.py"), os.path.join(work, "names.json")
    open(script, "w").write(BOTO3_ACCOUNTS)
    json.dump(names, open(nf, "w"))
    proxy.reset()
    wall = run([os.path.join(VENV_BIN, "python"), script, nf, str(ORG_CAP)], quota_env(proxy.url), work)
    rows.append(("accounts", f"boto3 x{ORG_CAP} adaptive", n, wall, floor) + counted(proxy.stats(), ACCOUNT_OPS, "organizations"))


def main(runbook, proxy_bin, work, sizes, account_sizes, cli_n, settle_ms):
    settle = settle_ms / 1000
    print(f"\nquota model: sso-admin {SSO_RATE:g} req/s, {SSO_CAP} assignments in progress; organizations "
          f"{ORG_RATE:g} req/s, {ORG_CAP} accounts in progress; creations settle after {settle:g} s; "
          f"{os.cpu_count()} cores")
    print("floor = max(2N / rate, N x settle / cap): one create and one status read each")
    print("cap floor = N x settle / cap: the in-progress cap alone (reads shared by a listing cost ~0 per item)")
    moto_proc, moto = start_moto()
    proxy = Proxy(proxy_bin, moto, settle_ms)
    rows = []
    try:
        for n in sizes:
            assignments(runbook, moto, proxy, n, settle, work, rows)
        if cli_n:
            awscli(runbook, moto, proxy, cli_n, settle, work, rows)
        for n in account_sizes:
            accounts(runbook, moto, proxy, n, settle, work, rows)
    finally:
        proxy.stop()
        moto_proc.kill()
    print(f"\n  {'work':<12} {'contender':<22} {'N':>5} {'wall s':>8} {'floor s':>8} {'x floor':>8} "
          f"{'x cap fl':>8} {'calls/item':>10} {'throttled':>9} {'refused':>8} {'in prog':>7}")
    for work_, who, n, wall, floor, calls, thr, ref, most in rows:
        cap = SSO_CAP if work_ == "assignments" else ORG_CAP
        cap_floor = n * settle / cap
        print(f"  {work_:<12} {who:<22} {n:>5} {wall:>8.1f} {floor:>8.1f} {wall / floor:>8.2f} "
              f"{wall / cap_floor:>8.2f} {calls / n:>10.2f} {thr:>9} {ref:>8} {most:>7}")
    sys.stdout.flush()
