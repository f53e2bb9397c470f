def main(P):
    import re
    pattern = P.get("naming_pattern")
    names = [n.strip() for n in P.get("names") or [] if n.strip()]
    problems = []
    for n in names:
        if len(n) > 50:
            problems.append(n + ": longer than 50 characters")
        if pattern and not re.fullmatch(pattern, n):
            problems.append(n + ": does not match the naming standard " + pattern)
    emails = [P["email_template"].replace("{name}", n) for n in names]
    if len(set(emails)) != len(emails):
        problems.append("two accounts would share a root email")
    taken = set(a.get("Email") for a in _pages(_client("organizations"), "list_accounts", "Accounts", {}))
    problems += [e + ": already the root email of an account" for e in emails if e in taken]
    if problems:
        raise Exception("; ".join(problems))
    return {"accounts": [{"name": n, "email": e} for n, e in zip(names, emails)], "count": len(names)}
