//! Steps in another account (`account=`, by assuming a role there) and another region
//! (`region=`), through the binary against moto, which keeps accounts apart by the assumed
//! role's credentials. What the steps did is checked with boto3 (an independent client).

use crate::common::fault_proxy::{FaultProxy, Rules};
use crate::common::{Moto, Test};
use crate::services::boto;

/// boto3 in `account` by the role Organizations creates there.
pub(crate) const IN_ACCOUNT: &str = r#"def member(s, account, region='us-east-1'):
    k = c('sts').assume_role(RoleArn=f'arn:aws:iam::{account}:role/OrganizationAccountAccessRole', RoleSessionName='check')['Credentials']
    return boto3.client(s, endpoint_url=c('sts').meta.endpoint_url, region_name=region, aws_access_key_id=k['AccessKeyId'], aws_secret_access_key=k['SecretAccessKey'], aws_session_token=k['SessionToken'])
"#;

fn users(endpoint: &str, account: Option<&str>) -> String {
    let client = match account {
        Some(a) => format!("member('iam', '{a}')"),
        None => "c('iam')".into(),
    };
    boto(
        endpoint,
        &format!("{IN_ACCOUNT}print(sorted(u['UserName'] for u in {client}.list_users()['Users']))"),
    )
}

const MEMBER: &str = r#"# A member account

```aws organizations:CreateOrganization id=org
FeatureSet = "ALL"
```

```aws organizations:CreateAccount id=made
AccountName = "workload"
Email = "workload@example.com"
```

```aws iam:CreateUser id=user account=${steps.made.CreateAccountStatus.AccountId}
UserName = "baseline-auditor"
```

```aws iam:UpdateAccountPasswordPolicy id=policy account=${steps.made.CreateAccountStatus.AccountId}
MinimumPasswordLength = 14
RequireSymbols = true
```

```aws sts:GetCallerIdentity id=who account=${steps.made.CreateAccountStatus.AccountId}
```

```rhai id=seen
#{ member: steps.made.CreateAccountStatus.AccountId, acting: steps.who.Account }
```
"#;

/// The user and the password policy are made in the member account, by the role assumed there
/// once for both steps; the management account has neither; the journal says where.
#[test]
fn a_step_in_a_member_account_acts_there_and_not_in_the_management_account() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let t = Test::new()
        .file("r.md", MEMBER)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    let out = t.run();
    out.code_is(0);
    let member = out
        .stdout
        .split("member=")
        .nth(1)
        .and_then(|s| s.get(..12))
        .expect("member account id")
        .to_string();
    // The step's identity was the member account's.
    out.stdout_has(&format!("acting={member}"));
    assert_eq!(users(&moto.endpoint, Some(&member)), "['baseline-auditor']");
    assert_eq!(users(&moto.endpoint, None), "[]");
    assert_eq!(
        boto(
            &moto.endpoint,
            &format!(
                "{IN_ACCOUNT}print(member('iam', '{member}').get_account_password_policy()['PasswordPolicy']['MinimumPasswordLength'])"
            )
        ),
        "14"
    );
    // One role session for the three steps in that account.
    assert_eq!(proxy.calls("AssumeRole"), 1, "{:?}", proxy.operations());
    let journal = crate::common::transcripts(&t.path(".runbook"));
    assert!(
        journal.contains(&format!("acting in account {member} (OrganizationAccountAccessRole)")),
        "{journal}"
    );
    assert!(
        journal.contains(&format!("in account {member} (OrganizationAccountAccessRole)\"")),
        "the intent names the account: {journal}"
    );
}

/// A fan-out over the organisation's member accounts: each item acts in its own account.
#[test]
fn a_fan_out_over_accounts_runs_each_item_in_its_account() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Rules::default());
    let text = r#"# Every member account

```aws organizations:CreateOrganization id=org
FeatureSet = "ALL"
```

```aws organizations:CreateAccount id=a
AccountName = "alpha"
Email = "alpha@example.com"
```

```aws organizations:CreateAccount id=b
AccountName = "beta"
Email = "beta@example.com"
```

```aws organizations:ListAccounts id=accounts
```

```rhai id=members
let management = steps.org.Organization.MasterAccountId;
#{ accounts: steps.accounts.Accounts.filter(|a| a.Id != management) }
```

```aws iam:CreateUser id=users for-each='steps.members.accounts' account=${item.Id}
UserName = "auditor-${item.Name}"
```

```aws iam:ListUsers id=listed for-each='steps.members.accounts' account=${item.Id}
```
"#;
    let t = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"]);
    t.run().code_is(0);
    let ids = boto(
        &moto.endpoint,
        r#"o = c('organizations')
m = o.describe_organization()['Organization']['MasterAccountId']
print(' '.join(a['Id'] + ':' + a['Name'] for a in o.list_accounts()['Accounts'] if a['Id'] != m))"#,
    );
    let members: Vec<(&str, &str)> = ids.split(' ').filter_map(|p| p.split_once(':')).collect();
    assert_eq!(members.len(), 2, "{ids}");
    for (id, name) in &members {
        assert_eq!(users(&moto.endpoint, Some(id)), format!("['auditor-{name}']"));
    }
    assert_eq!(users(&moto.endpoint, None), "[]");
    // Once per account, for both steps.
    assert_eq!(proxy.calls("AssumeRole"), 2, "{:?}", proxy.operations());
}

/// `region=` sends the step to another region; a global service stays where it answers.
#[test]
fn a_step_in_another_region_acts_there() {
    let moto = Moto::shared();
    let text = r#"# Regions

```aws ssm:PutParameter id=put region=eu-west-2
Name = "/baseline/version"
Value = "7"
Type = "String"
```

```aws ssm:GetParameter id=got region=eu-west-2
Name = "/baseline/version"
```

```aws iam:CreateUser id=global region=eu-west-2
UserName = "global-user"
```
"#;
    Test::new()
        .file("r.md", text)
        .aws(&moto.endpoint)
        .args(["run", "r.md"])
        .run()
        .code_is(0);
    assert_eq!(
        boto(
            &moto.endpoint,
            "print(c('ssm', 'eu-west-2').get_parameter(Name='/baseline/version')['Parameter']['Value'], len(c('ssm').describe_parameters()['Parameters']))"
        ),
        "7 0"
    );
    assert_eq!(users(&moto.endpoint, None), "['global-user']");
}

/// A role that cannot be assumed stops the step before any call in that account, with the role,
/// the account and what to check.
#[test]
fn a_failed_assume_role_names_the_role_and_the_account() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(
        &moto.endpoint,
        Rules {
            refuse_op: Some(("AssumeRole".into(), "AccessDenied".into())),
            ..Rules::default()
        },
    );
    let text = r#"# Denied

```aws iam:CreateUser id=user account=111122223333 role=BaselineRole
UserName = "never"
```
"#;
    let out = Test::new()
        .file("r.md", text)
        .aws(&proxy.endpoint)
        .args(["run", "r.md"])
        .run();
    out.code_is(1)
        .stderr_has("assuming role BaselineRole in account 111122223333 failed")
        .stderr_has("trust policy")
        .stderr_has("arn:aws:iam::111122223333:role/BaselineRole");
    assert_eq!(proxy.calls("CreateUser"), 0);
}

/// `check` says what is wrong with where a step acts, at the attribute.
#[test]
fn check_refuses_a_bad_account_region_or_role() {
    let text = r#"# Places

```aws iam:ListUsers id=a account=12345
```

```aws iam:ListUsers id=b region=eu-west
```

```aws iam:ListUsers id=c role=Admin
```

```rhai id=d account=111122223333
1
```

```aws iam:ListUsers id=e account=${steps.nope.Id}
```

```aws iam:ListUsers id=f account=111122223333 role=Audit region=ap-southeast-2
```
"#;
    Test::new()
        .file("r.md", text)
        .args(["check", "r.md"])
        .run()
        .code_is(2)
        .stderr_has("r.md:3:35: error: account `12345` is not an AWS account id (12 digits)")
        .stderr_has("r.md:6:34: error: region `eu-west` is not an AWS region name")
        .stderr_has("`role=` without `account=`")
        .stderr_has("`account=` is for aws steps")
        .stderr_has("nope")
        .stderr_lacks("r.md:21:");
}

/// `plan` says where a change would be made, and reads in the other account.
#[test]
fn plan_names_the_account() {
    let moto = Moto::shared();
    let text = r#"# Plan

```aws iam:ListUsers id=list account=222233334444
```

```aws iam:CreateUser id=user account=222233334444 region=eu-west-1
UserName = "planned"
```
"#;
    Test::new()
        .file("r.md", text)
        .aws(&moto.endpoint)
        .args(["plan", "r.md"])
        .run()
        .stdout_has("in account 222233334444 (OrganizationAccountAccessRole), region eu-west-1");
    assert_eq!(users(&moto.endpoint, Some("222233334444")), "[]");
}

/// The bundled baseline runbook, run for real against an organization with two member
/// accounts: each member account has the password policy and both contacts; the management
/// account has neither.
#[test]
fn the_account_baseline_runbook_sets_every_member_account() {
    let moto = Moto::shared();
    let ids = boto(
        &moto.endpoint,
        r#"o = c('organizations')
o.create_organization(FeatureSet='ALL')
ids = [o.create_account(AccountName=n, Email=n + '@example.com')['CreateAccountStatus']['AccountId'] for n in ['dev', 'prod']]
print(' '.join(ids))"#,
    );
    let repo = crate::common::repo();
    let t = Test::new().aws(&moto.endpoint);
    t.run_args(&[
        "run".into(),
        repo.join("runbooks/account-baseline.md").display().to_string(),
        "--answers".into(),
        repo.join("runbooks/rehearsal/account-baseline.toml")
            .display()
            .to_string(),
    ])
    .code_is(0)
    .stdout_has("baseline set in 2 member account(s)");
    for id in ids.split(' ') {
        assert_eq!(
            boto(
                &moto.endpoint,
                &format!(
                    r#"{IN_ACCOUNT}p = member('iam', '{id}').get_account_password_policy()['PasswordPolicy']
a = member('account', '{id}')
print(p['MinimumPasswordLength'], p['PasswordReusePrevention'], a.get_alternate_contact(AlternateContactType='SECURITY')['AlternateContact']['EmailAddress'], a.get_alternate_contact(AlternateContactType='BILLING')['AlternateContact']['PhoneNumber'])"#
                )
            ),
            "14 24 security@example.com +1 206 555 0101",
            "account {id}"
        );
    }
    assert_eq!(
        boto(
            &moto.endpoint,
            r#"from botocore.exceptions import ClientError
try:
    c('iam').get_account_password_policy()
    print('set')
except ClientError as e:
    print(e.response['Error']['Code'])"#
        ),
        "NoSuchEntity",
        "the management account is left as it was"
    );
}
