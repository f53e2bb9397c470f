//! Every AWS service by name, in each protocol, through the binary against moto: s3 and route53
//! (rest-xml), lambda (rest-json), ec2, ssm and sqs (json), sns (query). What the steps did is
//! checked with boto3 (moto's own dependency, an independent client), never with our own calls.

use std::process::Command;

use crate::common::{Moto, Test, files, moto_server};

/// Runs `code` in the venv's python with `c(service)`, a boto3 client on `endpoint`; its stdout.
pub(crate) fn boto(endpoint: &str, code: &str) -> String {
    let python = moto_server().with_file_name("python");
    let script = format!(
        r#"import boto3, json
def c(s, region='us-east-1'):
    return boto3.client(s, endpoint_url='{endpoint}', region_name=region, aws_access_key_id='testing', aws_secret_access_key='testing')
{code}
"#
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .env_remove("AWS_PROFILE")
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run(moto: &Moto, text: &str) -> crate::common::Output {
    Test::new()
        .file("r.md", text)
        .aws(&moto.endpoint)
        .args(["run", "r.md"])
        .run()
}

/// rest-xml: a bucket made, tagged (an XML body the model requires a Content-MD5 for),
/// versioned, then read back by name from the answer's XML and a HEAD's headers.
#[test]
fn s3_by_name_speaks_rest_xml() {
    let moto = Moto::shared();
    let text = r#"# Logs bucket

```aws s3:CreateBucket id=bucket
Bucket = "audit-logs-1"
```

```aws s3:PutBucketTagging id=tag
Bucket = "audit-logs-1"
Tagging = { TagSet = [{ Key = "team", Value = "platform & ops" }] }
```

```aws s3:PutBucketVersioning id=versioning
Bucket = "audit-logs-1"
VersioningConfiguration = { Status = "Enabled" }
```

```aws s3:ListBuckets id=buckets
```

```aws s3:GetBucketTagging id=tags
Bucket = "audit-logs-1"
```

```aws s3:HeadBucket id=head
Bucket = "audit-logs-1"
```

```rhai id=seen
if steps.buckets.Buckets[0].Name != "audit-logs-1" { throw "no bucket listed"; }
if steps.tags.TagSet[0].Value != "platform & ops" { throw `tags: ${steps.tags.TagSet}`; }
if steps.head.BucketRegion != "us-east-1" { throw `head: ${steps.head}`; }
#{ created: steps.buckets.Buckets[0].CreationDate }
```
"#;
    let out = run(&moto, text);
    out.code_is(0);
    let seen = boto(
        &moto.endpoint,
        "s3 = c('s3')\nprint(json.dumps([s3.get_bucket_versioning(Bucket='audit-logs-1').get('Status'), s3.get_bucket_tagging(Bucket='audit-logs-1')['TagSet']]))",
    );
    assert_eq!(seen, r#"["Enabled", [{"Key": "team", "Value": "platform & ops"}]]"#);
    // Timestamps read back as ISO 8601, whatever the protocol wrote.
    assert!(out.stdout.contains("created=20"), "{}", out.stdout);
}

/// A read the model pages with its own tokens (s3's ContinuationToken and
/// NextContinuationToken, which no common spelling matches) is read to its last page.
#[test]
fn an_s3_listing_is_read_to_its_last_page_by_the_models_paginator() {
    let moto = Moto::shared();
    boto(
        &moto.endpoint,
        r#"s3 = c('s3')
s3.create_bucket(Bucket='paged')
for k in ['a/1', 'a/2', 'b 3']:
    s3.put_object(Bucket='paged', Key=k, Body=b'x')"#,
    );
    let text = r#"# Pages

```aws s3:ListObjectsV2 id=listed
Bucket = "paged"
MaxKeys = 1
```

```rhai id=counted
let n = steps.listed.Contents.len();
if n != 3 { throw `read ${n} of 3 objects`; }
if steps.listed.NextContinuationToken != () { throw "a page token was left"; }
#{ n: n, last: steps.listed.Contents[2].Key }
```

```aws s3:DeleteObject id=rm
Bucket = "paged"
Key = "b 3"
```
"#;
    run(&moto, text).code_is(0).stdout_has("n=3");
    // The key with a space went into the URI as one label and named the right object.
    assert_eq!(
        boto(
            &moto.endpoint,
            "print(sorted(o['Key'] for o in c('s3').list_objects_v2(Bucket='paged')['Contents']))"
        ),
        "['a/1', 'a/2']"
    );
}

/// An operation that streams its answer or its request is refused by `check`, before any run,
/// with what to do instead.
#[test]
fn a_streaming_operation_is_refused_with_a_clear_error() {
    let text = r#"# Streams

```aws s3:GetObject id=get
Bucket = "b"
Key = "k"
```

```aws s3:PutObject id=put
Bucket = "b"
Key = "k"
```
"#;
    let out = Test::new().file("r.md", text).args(["check", "r.md"]).run();
    out.code_is(2)
        .stderr_has("r.md:3:")
        .stderr_has("s3:GetObject streams its answer (`Body`)")
        .stderr_has("r.md:8:")
        .stderr_has("s3:PutObject streams its request body (`Body`)");
    // And `run` makes no call: check stops it.
    let moto = Moto::shared();
    run(&moto, text).code_is(2);
}

/// rest-json: a role (query), then a function made with a base64 blob in a nested member, read
/// by its name in the URI, tagged by its ARN (a label with colons), and listed.
#[test]
fn lambda_by_name_speaks_rest_json() {
    let moto = Moto::shared();
    let text = r#"# Function

```aws iam:CreateRole id=role
RoleName = "fn-role"
AssumeRolePolicyDocument = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
```

```aws lambda:CreateFunction id=func
FunctionName = "baseline-check"
Runtime = "python3.12"
Role = "${steps.role.Role.Arn}"
Handler = "index.handler"
Code = { ZipFile = "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==" }
Timeout = 30
Environment = { Variables = { STAGE = "prod" } }
```

```aws lambda:TagResource id=tag
Resource = "${steps.func.FunctionArn}"
Tags = { owner = "platform" }
```

```aws lambda:GetFunction id=got
FunctionName = "baseline-check"
```

```aws lambda:ListFunctions id=all
MaxItems = 1
```

```rhai id=seen
if steps.got.Configuration.Timeout != 30 { throw `timeout: ${steps.got.Configuration}`; }
if steps.got.Tags.owner != "platform" { throw `tags: ${steps.got.Tags}`; }
if steps.all.Functions.len() != 1 { throw "not listed"; }
if steps.got.Configuration.Environment.Variables.STAGE != "prod" { throw "env"; }
#{ env: steps.got.Configuration.Environment.Variables.STAGE }
```
"#;
    // The model marks a function's environment sensitive: it reached the script (which checked
    // it), and nothing of it, name or value, was printed or kept.
    let t = Test::new().file("r.md", text).aws(&moto.endpoint).args(["run", "r.md"]);
    t.run().code_is(0).stdout_lacks("prod").stdout_lacks("STAGE");
    for (path, text) in files(&t.path(".runbook")) {
        assert!(!text.contains("prod") && !text.contains("STAGE"), "{path}: {text}");
    }
    assert_eq!(
        boto(
            &moto.endpoint,
            "f = c('lambda').get_function(FunctionName='baseline-check')\nprint(f['Configuration']['Timeout'], f['Tags'])"
        ),
        "30 {'owner': 'platform'}"
    );
}

/// ec2: a VPC made and tagged (capitalised, flat lists), then found by a tag filter.
#[test]
fn ec2_by_name_speaks_its_own_query_dialect() {
    let moto = Moto::shared();
    let text = r#"# Network

```aws ec2:CreateVpc id=vpc
CidrBlock = "10.42.0.0/16"
TagSpecifications = [{ ResourceType = "vpc", Tags = [{ Key = "Name", Value = "baseline" }] }]
```

```aws ec2:CreateTags id=tag
Resources = ["${steps.vpc.Vpc.VpcId}"]
Tags = [{ Key = "team", Value = "platform" }, { Key = "tier", Value = "core" }]
```

```aws ec2:DescribeVpcs id=found
Filters = [{ Name = "tag:team", Values = ["platform"] }]
```

```rhai id=seen
if steps.found.Vpcs.len() != 1 { throw `found ${steps.found.Vpcs.len()}`; }
let v = steps.found.Vpcs[0];
if v.CidrBlock != "10.42.0.0/16" { throw `cidr ${v.CidrBlock}`; }
#{ tags: v.Tags.len(), is_default: v.IsDefault }
```
"#;
    run(&moto, text)
        .code_is(0)
        .stdout_has("tags=3")
        .stdout_has("is_default=false");
    assert_eq!(
        boto(
            &moto.endpoint,
            "v = c('ec2').describe_vpcs(Filters=[{'Name': 'cidr', 'Values': ['10.42.0.0/16']}])['Vpcs'][0]\nprint(sorted(t['Key'] for t in v['Tags']))"
        ),
        "['Name', 'team', 'tier']"
    );
}

/// json (ssm, sqs) and query (sns): a parameter written and read, a queue and a topic made and
/// subscribed; the parameter's listing is paged by the model's paginator.
#[test]
fn ssm_sqs_and_sns_by_name() {
    let moto = Moto::shared();
    let text = r#"# Messaging

```aws ssm:PutParameter id=p1
Name = "/baseline/a"
Value = "one"
Type = "String"
```

```aws ssm:PutParameter id=p2
Name = "/baseline/b"
Value = "two"
Type = "String"
```

```aws ssm:GetParametersByPath id=params
Path = "/baseline"
MaxResults = 1
```

```aws sqs:CreateQueue id=queue
QueueName = "alerts"
Attributes = { VisibilityTimeout = "45" }
```

```aws sqs:GetQueueAttributes id=qa
QueueUrl = "${steps.queue.QueueUrl}"
AttributeNames = ["QueueArn"]
```

```aws sns:CreateTopic id=topic
Name = "alerts"
Tags = [{ Key = "team", Value = "platform" }]
```

```aws sns:Subscribe id=sub
TopicArn = "${steps.topic.TopicArn}"
Protocol = "sqs"
Endpoint = "${steps.qa.Attributes.QueueArn}"
```

```aws sns:ListSubscriptionsByTopic id=subs
TopicArn = "${steps.topic.TopicArn}"
```

```rhai id=seen
#{ subs: steps.subs.Subscriptions.len(), proto: steps.subs.Subscriptions[0].Protocol }
```

```rhai id=paged
// A parameter's value is sensitive in the model: what reads it is secret, printed as nothing.
if steps.params.Parameters.len() != 2 { throw `params: ${steps.params.Parameters.len()}`; }
#{ values: steps.params.Parameters.map(|p| p.Value) }
```
"#;
    run(&moto, text)
        .code_is(0)
        .stdout_has("subs=1")
        .stdout_has("proto=sqs")
        .stdout_lacks("values=")
        // PutParameter's value is masked where it is, however short.
        .stdout_lacks(r#""Value":"one""#);
    assert_eq!(
        boto(
            &moto.endpoint,
            "q = c('sqs').get_queue_url(QueueName='alerts')['QueueUrl']\nprint(c('sqs').get_queue_attributes(QueueUrl=q, AttributeNames=['VisibilityTimeout'])['Attributes']['VisibilityTimeout'], c('ssm').get_parameter(Name='/baseline/b')['Parameter']['Value'])"
        ),
        "45 two"
    );
}

/// route53 is global and rest-xml without a payload member: the request's body is the input
/// shape's own root element. The zone id CreateHostedZone answers (`/hostedzone/Z1`) is taken
/// as is by the next call, as the SDKs take it.
#[test]
fn route53_by_name_writes_its_root_element() {
    let moto = Moto::shared();
    let text = r#"# Zone

```aws route53:CreateHostedZone id=zone
Name = "example.internal"
CallerReference = "baseline-1"
HostedZoneConfig = { Comment = "made by a runbook", PrivateZone = false }
```

```aws route53:ListHostedZones id=zones
```

```aws route53:ChangeResourceRecordSets id=records
HostedZoneId = "${steps.zone.HostedZone.Id}"
ChangeBatch = { Comment = "baseline", Changes = [{ Action = "UPSERT", ResourceRecordSet = { Name = "db.example.internal", Type = "A", TTL = 60, ResourceRecords = [{ Value = "10.0.0.7" }] } }] }
```

```rhai id=seen
#{ zones: steps.zones.HostedZones.len(), comment: steps.zones.HostedZones[0].Config.Comment }
```
"#;
    run(&moto, text)
        .code_is(0)
        .stdout_has("zones=1")
        .stdout_has("made by a runbook");
    assert_eq!(
        boto(
            &moto.endpoint,
            r#"r = c('route53')
z = r.list_hosted_zones()['HostedZones'][0]
print(z['Name'], [x['ResourceRecords'][0]['Value'] for x in r.list_resource_record_sets(HostedZoneId=z['Id'])['ResourceRecordSets'] if x['Type'] == 'A'])"#
        ),
        "example.internal. ['10.0.0.7']"
    );
}

/// `check` knows services it never knew before and suggests near misses.
#[test]
fn check_knows_every_service_and_suggests() {
    let text = r#"# Names

```aws s3:ListBucket id=a
```

```aws account:GetAlternateContact id=b
AlternateContactType = "SECURITY"
```

```aws cloudtrail:CreateTrail id=c
Name = "org"
S3BucketName = "logs"
IsOrganisationTrail = true
```

```aws ssm:GetParameter id=d
Name = "/x"
WithDecryption = "yes"
```
"#;
    let out = Test::new().file("r.md", text).args(["check", "r.md"]).run();
    out.code_is(2)
        .stderr_has("s3 has no operation `ListBucket`")
        .stderr_has("did you mean `ListBuckets`?")
        .stderr_has("has no request member `IsOrganisationTrail`")
        .stderr_has("did you mean `IsOrganizationTrail`?")
        .stderr_has("`WithDecryption` must be boolean")
        .stderr_lacks("GetAlternateContact");
}
