//! Runbooks and AWS fixtures that several areas share: one account, one assignment, the
//! accounts a test made, and an account made straight at moto as another team would have.

use super::{block_on, sdk};

pub(crate) const ONE_ACCOUNT: &str = r#"# One account

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=acct timeout=20s
name = "acme-payments-prod"
email = "aws+payments-prod@example.com"
```
"#;

/// The accounts the tests made (named `acme-…`) that the emulator lists.
pub(crate) fn accounts(endpoint: &str) -> usize {
    block_on(async {
        let ctx = sdk(endpoint);
        runbook_plugins::aws::organizations::all_accounts(&ctx)
            .await
            .expect("accounts")
            .iter()
            .filter(|a| a.name.starts_with("acme-"))
            .count()
    })
}

/// An organization and five member accounts, made by one fan-out.
pub(crate) const FIVE_ACCOUNTS: &str = r#"# Many

```aws organizations.ensure-organization id=org
```

```aws organizations.ensure-account id=accts for-each='["acme-a-prod", "acme-b-prod", "acme-c-prod", "acme-d-prod", "acme-e-prod"]' timeout=60s
name = "${item}"
email = "aws+${item}@example.com"
```
"#;

pub(crate) const ASSIGNMENT: &str = r#"# Assign

```aws sso-admin.find-instance id=ic
```

```aws identitystore.ensure-user id=user
identity_store_id = "${steps.ic.identity_store_id}"
user_name = "ops"
display_name = "Ops"
given_name = "O"
family_name = "Ps"
email = "ops@example.com"
```

```aws sso-admin.ensure-permission-set id=ps
instance_arn = "${steps.ic.instance_arn}"
name = "AdministratorAccess"
managed_policies = ["AdministratorAccess"]
```

```aws sso-admin.ensure-assignment id=assign timeout=20s
instance_arn = "${steps.ic.instance_arn}"
permission_set_arn = "${steps.ps.arn}"
principal_id = "${steps.user.user_id}"
account_id = "123456789012"
```
"#;

/// An organization (all features) and one member account made straight at moto, as another
/// team would have made it; its id.
pub(crate) fn seed_account(endpoint: &str, name: &str, email: &str) -> String {
    block_on(async {
        let org = sdk(endpoint).organizations().await.expect("client");
        org.create_organization()
            .feature_set("ALL".into())
            .send()
            .await
            .expect("organization");
        org.create_account()
            .account_name(name)
            .email(email)
            .send()
            .await
            .expect("account")
            .create_account_status()
            .and_then(|s| s.account_id())
            .map(String::from)
            .expect("id")
    })
}
