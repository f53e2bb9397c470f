"""moto's server, with IAM's SimulatePrincipalPolicy, which moto 5.2.5 lacks.

The decisions come from moto's own policy evaluator (moto.iam.access_control.IAMPolicy), the one
that authorises every request once INITIAL_NO_AUTH_ACTION_COUNT requests have passed, over the
same policies it collects for a caller (the user's inline and attached policies and its groups';
a role's inline and attached policies). So what this answers "allowed" moto lets the caller do,
and what it answers denied moto refuses: the preflight is tested against the authorizer that then
enforces, not against a second opinion. The call itself is authorised like any other
(iam:SimulatePrincipalPolicy).

Run as moto_server: python moto_simulate.py -H 127.0.0.1 -p PORT
"""

import sys

from moto.core.responses import ActionResult
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.responses import IamResponse


def _policies(backend, source_arn):
    kind, _, name = source_arn.split(":", 5)[5].partition("/")
    name = name.rsplit("/", 1)[-1]
    if kind == "user":
        backend.get_user(name)  # NoSuchEntity for a user that does not exist, as IAM says
        found = [backend.get_user_policy(name, p) for p in backend.list_user_policies(name)]
        found += backend.list_attached_user_policies(name)[0]
        for group in backend.get_groups_for_user(name):
            found += [backend.get_group_policy(group.name, p) for p in backend.list_group_policies(group.name)]
            found += backend.list_attached_group_policies(group.name)[0]
        return found
    if kind == "role":
        backend.get_role(name)
        found = [backend.get_role_policy(name, p)[1] for p in backend.list_role_policies(name)]
        found += backend.list_attached_role_policies(name)[0]
        return found
    raise ValueError(f"cannot simulate {source_arn}")


def simulate_principal_policy(self):
    source = self._get_param("PolicySourceArn")
    actions = self._get_param("ActionNames", [])
    resources = self._get_param("ResourceArns", []) or ["*"]
    policies = _policies(self.backend, source)
    results = []
    for action in actions:
        for resource in resources:
            decision = "implicitDeny"
            for policy in policies:
                verdict = IAMPolicy(policy).is_action_permitted(action, resource)
                if verdict == PermissionResult.DENIED:
                    decision = "explicitDeny"
                    break
                if verdict == PermissionResult.PERMITTED:
                    decision = "allowed"
            results.append(
                {"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision}
            )
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


IamResponse.simulate_principal_policy = simulate_principal_policy

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
