//! Which IAM actions an AWS call needs. Every built-in action declares the calls it makes
//! (`Action::CALLS`, in the service models' names, `sso-admin:ListInstances`) and a step that
//! calls by name makes its one call; both map here to IAM actions, so `runbook permissions` reads
//! one table for both.
//!
//! The rule: the IAM action is the service's signing name (the model's `signingName`, else its
//! `endpointPrefix`) and the operation's name: `sso-admin:ListInstances` is signed for `sso` and
//! authorised as `sso:ListInstances`. AWS departs from that rule in places; the departures we know
//! are written down in [`EXCEPTIONS`] and [`PREFIXES`], each with AWS's documentation as the
//! reason. A call not listed there follows the rule.

use std::collections::BTreeSet;

use crate::call::name::{NameError, resolve};

/// Signing names whose IAM prefix is another word (the Service Authorization Reference's
/// "service prefix" differs from the name requests are signed for).
const PREFIXES: &[(&str, &str)] = &[
    // CloudWatch is signed as `monitoring`, authorised as `cloudwatch:`.
    ("monitoring", "cloudwatch"),
    // The Resource Groups Tagging API is signed as `tagging`, authorised as `tag:`.
    ("tagging", "tag"),
    // Cloud Control API is authorised as `cloudformation:` (CreateResource, ListResources, ...).
    ("cloudcontrolapi", "cloudformation"),
    // The IoT data plane and secure tunneling are authorised as `iot:`.
    ("iotdata", "iot"),
    ("IoTSecuredTunneling", "iot"),
    // Mechanical Turk is signed as `mturk-requester`, authorised as `mechanicalturk:`.
    ("mturk-requester", "mechanicalturk"),
];

/// Calls whose IAM actions are not `prefix:Operation`: none (AWS needs no permission), another
/// name, or more than one action. Keys are calls in the models' names (`service:Operation`).
pub const EXCEPTIONS: &[(&str, &[&str])] = &[
    // "No permissions are required to perform this operation" (STS API reference): even an
    // explicit deny cannot refuse it.
    ("sts:GetCallerIdentity", &[]),
    // Creating an organization creates the AWSServiceRoleForOrganizations service-linked role,
    // which needs iam:CreateServiceLinkedRole (Organizations User Guide, "Creating an organization").
    (
        "organizations:CreateOrganization",
        &["organizations:CreateOrganization", "iam:CreateServiceLinkedRole"],
    ),
    // Lambda's Invoke API is authorised as lambda:InvokeFunction.
    ("lambda:Invoke", &["lambda:InvokeFunction"]),
    // S3 operations authorised under other names (S3 User Guide, "Amazon S3 actions").
    ("s3:ListBuckets", &["s3:ListAllMyBuckets"]),
    ("s3:HeadBucket", &["s3:ListBucket"]),
    ("s3:ListObjects", &["s3:ListBucket"]),
    ("s3:ListObjectsV2", &["s3:ListBucket"]),
    ("s3:ListObjectVersions", &["s3:ListBucketVersions"]),
    ("s3:HeadObject", &["s3:GetObject"]),
    ("s3:DeleteObjects", &["s3:DeleteObject"]),
    ("s3:CopyObject", &["s3:GetObject", "s3:PutObject"]),
    ("s3:PutBucketEncryption", &["s3:PutEncryptionConfiguration"]),
    ("s3:GetBucketEncryption", &["s3:GetEncryptionConfiguration"]),
    ("s3:DeleteBucketEncryption", &["s3:PutEncryptionConfiguration"]),
    ("s3:PutPublicAccessBlock", &["s3:PutBucketPublicAccessBlock"]),
    ("s3:GetPublicAccessBlock", &["s3:GetBucketPublicAccessBlock"]),
    ("s3:DeletePublicAccessBlock", &["s3:PutBucketPublicAccessBlock"]),
    ("s3:PutBucketLifecycleConfiguration", &["s3:PutLifecycleConfiguration"]),
    ("s3:GetBucketLifecycleConfiguration", &["s3:GetLifecycleConfiguration"]),
    ("s3:DeleteBucketLifecycle", &["s3:PutLifecycleConfiguration"]),
    ("s3:DeleteBucketOwnershipControls", &["s3:PutBucketOwnershipControls"]),
];

/// The IAM actions one call (`service:Operation`, as a step or an action names it) needs, in
/// IAM's spelling. Empty for a call AWS does not authorise.
pub fn iam_actions(call_name: &str) -> Result<Vec<String>, NameError> {
    let c = resolve(call_name)?;
    let canonical = format!("{}:{}", c.service.name, c.name);
    if let Some((_, actions)) = EXCEPTIONS.iter().find(|(k, _)| *k == canonical) {
        return Ok(actions.iter().map(|a| a.to_string()).collect());
    }
    // API Gateway's management APIs are authorised by HTTP method on a resource path
    // (`apigateway:GET`), not by operation name.
    if c.service.signing_name() == "apigateway" {
        return Ok(vec![format!("apigateway:{}", c.operation.http.method)]);
    }
    let signing = c.service.signing_name();
    let prefix = PREFIXES
        .iter()
        .find(|(s, _)| *s == signing)
        .map_or(signing, |(_, p)| *p);
    Ok(vec![format!("{prefix}:{}", c.name)])
}

/// The IAM actions of several calls, each once, in order.
pub fn iam_actions_of(calls: &[&str]) -> Result<BTreeSet<String>, NameError> {
    let mut out = BTreeSet::new();
    for c in calls {
        out.extend(iam_actions(c)?);
    }
    Ok(out)
}

/// Whether AWS authorises the call at all (sts:GetCallerIdentity needs no permission).
pub fn needs_permission(call_name: &str) -> bool {
    !matches!(iam_actions(call_name), Ok(v) if v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;
    use crate::call;

    #[test]
    fn the_rule_is_the_signing_name_and_the_operation() {
        assert_eq!(
            iam_actions("sso-admin:ListInstances").expect("a call"),
            ["sso:ListInstances"]
        );
        assert_eq!(
            iam_actions("identitystore:CreateUser").expect("a call"),
            ["identitystore:CreateUser"]
        );
        assert_eq!(
            iam_actions("cloudwatch:PutMetricAlarm").expect("a call"),
            ["cloudwatch:PutMetricAlarm"]
        );
        assert_eq!(iam_actions("s3:ListObjectsV2").expect("a call"), ["s3:ListBucket"]);
        assert_eq!(
            iam_actions("apigateway:GetRestApis").expect("a call"),
            ["apigateway:GET"]
        );
        assert!(iam_actions("sts:GetCallerIdentity").expect("a call").is_empty());
    }

    /// A table entry for a call the models do not know would never be used: a typo, or a model
    /// that renamed the operation.
    #[test]
    fn every_exception_names_a_real_call() {
        for (c, _) in EXCEPTIONS {
            let r = call::resolve(c).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_eq!(format!("{}:{}", r.service.name, r.name), *c);
        }
        let signing: BTreeSet<&str> = call::service_names()
            .into_iter()
            .filter_map(call::service)
            .map(|s| s.signing_name())
            .collect();
        for (s, _) in PREFIXES {
            assert!(signing.contains(s), "no model is signed for {s}");
        }
    }

    /// Each built-in action's declared calls are real calls; each AWS action declares some.
    #[test]
    fn every_builtin_declares_real_calls() {
        for a in Registry::builtin().iter() {
            let i = a.info();
            for c in i.calls {
                let r = call::resolve(c).unwrap_or_else(|e| panic!("{}: {c}: {e}", i.name));
                assert_eq!(format!("{}:{}", r.service.name, r.name), *c, "{}", i.name);
            }
            assert_eq!(i.calls.is_empty(), i.name.starts_with("net."), "{}", i.name);
        }
    }
}
