HANDOVER = {
    "SubscriptionRequiredException": "support-plan",
    "OptInRequired": "not-activated",
    "AccessDeniedException": "access-denied",
}
CONSOLE = ("https://console.aws.amazon.com/support/home#/case/create?issueType=customer-service"
           "&serviceCode=customer-account&categoryCode=activation")


def _handed_over(P, reason):
    text = "Subject: " + P["subject"] + "\n\n" + P["body"]
    return {"case_id": "", "display_id": "", "status": "handed-over", "created": False, "follows_up": "",
            "handed_over": True, "reason": reason, "console_link": CONSOLE, "handover_file": "",
            "handed_over_flag": "true", "case_text": text}


def main(P):
    me = _client("sts").get_caller_identity()["Account"]
    want = (P.get("account_id") or "").strip()
    if want and want != me:
        return _handed_over(P, "other-account")
    c = _client("support", "us-east-1")
    try:
        cases = _pages(c, "describe_cases", "cases", {"includeResolvedCases": True, "language": P.get("language") or "en"},
                       "nextToken")
    except botocore.exceptions.ClientError as e:
        if _code(e) in HANDOVER:
            return _handed_over(P, HANDOVER[_code(e)])
        raise
    same = [k for k in cases if k.get("subject") == P["subject"]]
    for k in same:
        if k.get("status") != "resolved":
            return {"case_id": k["caseId"], "display_id": k.get("displayId", ""), "status": k.get("status", ""),
                    "created": False, "follows_up": "", "handed_over": False, "reason": "", "console_link": "",
                    "handover_file": "", "handed_over_flag": "false", "case_text": ""}
    body = P["body"]
    follows = ""
    if same:
        follows = same[0].get("displayId") or same[0]["caseId"]
        body = body + "\n\nThis follows up case " + follows + ", resolved."
    kw = {"subject": P["subject"], "communicationBody": body, "serviceCode": P.get("service_code") or "customer-account",
          "categoryCode": P.get("category_code") or "activation", "severityCode": P.get("severity") or "low",
          "language": P.get("language") or "en", "issueType": P.get("issue_type") or "customer-service"}
    if P.get("cc"):
        kw["ccEmailAddresses"] = P["cc"]
    case_id = c.create_case(**kw)["caseId"]
    got = c.describe_cases(caseIdList=[case_id], includeResolvedCases=True)["cases"]
    shown = got[0] if got else {}
    return {"case_id": case_id, "display_id": shown.get("displayId", ""), "status": shown.get("status", "opened"),
            "created": True, "follows_up": follows, "handed_over": False, "reason": "", "console_link": "",
            "handover_file": "", "handed_over_flag": "false", "case_text": ""}
