//! What the emulator holds, as a test counts it through the real SDK: Identity Center's users,
//! permission sets and assignments, Part 2's resources, Support cases.

/// An SDK context on the emulator, for counting what the runs created.
pub fn sdk(endpoint: &str) -> runbook_plugins::Context {
    sdk_as(endpoint, "testing", "testing")
}

/// [`sdk`] signing with these keys (a user moto authorises against its policies).
pub fn sdk_as(endpoint: &str, key: &str, secret: &str) -> runbook_plugins::Context {
    runbook_plugins::Context::with_limits(
        runbook_plugins::AwsOptions {
            profile: None,
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint.into()),
            max_attempts: Some(1),
            attempt_timeout: None,
            static_credentials: Some((key.into(), secret.into())),
        },
        std::env::temp_dir(),
        Default::default(),
        runbook_plugins::aws::published_limits(),
    )
}

/// The emulator's one Identity Center instance: its ARN and its identity store's id.
pub struct Instance {
    pub arn: String,
    pub store: String,
}

pub async fn instance(ctx: &runbook_plugins::Context) -> Instance {
    let sso = ctx.sso_admin(None).await.expect("client");
    let ic = sso.list_instances().send().await.expect("instances");
    let first = ic.instances().first().expect("an Identity Center instance");
    Instance {
        arn: first.instance_arn().expect("arn").to_string(),
        store: first.identity_store_id().expect("store").to_string(),
    }
}

/// The emulator's Identity Center as a test counts it: its users, its permission sets, and the
/// accounts the first user is assigned in (one entry per assignment, all pages).
pub struct IdentityCenter {
    pub users: usize,
    pub permission_sets: usize,
    pub assigned: Vec<String>,
}

pub fn identity_center(endpoint: &str) -> IdentityCenter {
    block_on(async {
        let ctx = sdk(endpoint);
        let sso = ctx.sso_admin(None).await.expect("client");
        let Instance { arn, store } = instance(&ctx).await;
        let ids = ctx.identitystore(None).await.expect("client");
        let users = ids.list_users().identity_store_id(&store).send().await.expect("users");
        let sets = sso
            .list_permission_sets()
            .instance_arn(&arn)
            .send()
            .await
            .expect("sets");
        let mut assigned = Vec::new();
        if let Some(user) = users.users().first() {
            let mut pages = sso
                .list_account_assignments_for_principal()
                .instance_arn(&arn)
                .principal_id(user.user_id())
                .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.expect("assignments");
                assigned.extend(
                    page.account_assignments()
                        .iter()
                        .filter_map(|a| a.account_id().map(String::from)),
                );
            }
        }
        IdentityCenter {
            users: users.users().len(),
            permission_sets: sets.permission_sets().len(),
            assigned,
        }
    })
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// (permission sets named AdministratorAccess, their session durations and policies, users
/// named cloud.admin, assignments of the set in the management account)
pub fn part2_counts(endpoint: &str) -> (usize, Vec<String>, usize, usize) {
    block_on(async {
        let ctx = sdk(endpoint);
        let sso = ctx.sso_admin(None).await.expect("client");
        let inst = sso.list_instances().send().await.expect("instances");
        let i = &inst.instances()[0];
        let arn = i.instance_arn().expect("arn").to_string();
        let store = i.identity_store_id().expect("store").to_string();
        let sets = sso
            .list_permission_sets()
            .instance_arn(&arn)
            .send()
            .await
            .expect("sets");
        let mut admin_sets = 0;
        let mut details = Vec::new();
        let mut ps_arn = String::new();
        for ps in sets.permission_sets() {
            let d = sso
                .describe_permission_set()
                .instance_arn(&arn)
                .permission_set_arn(ps)
                .send()
                .await
                .expect("describe");
            let d = d.permission_set().expect("ps");
            if d.name() == Some("AdministratorAccess") {
                admin_sets += 1;
                ps_arn = ps.clone();
                details.push(d.session_duration().unwrap_or_default().to_string());
                let pols = sso
                    .list_managed_policies_in_permission_set()
                    .instance_arn(&arn)
                    .permission_set_arn(ps)
                    .send()
                    .await
                    .expect("policies");
                for p in pols.attached_managed_policies() {
                    details.push(p.name().unwrap_or_default().to_string());
                }
            }
        }
        let ids = ctx.identitystore(None).await.expect("client");
        let users = ids.list_users().identity_store_id(&store).send().await.expect("users");
        let admins = users
            .users()
            .iter()
            .filter(|u| u.user_name() == Some("cloud.admin"))
            .count();
        let assignments = if ps_arn.is_empty() {
            0
        } else {
            sso.list_account_assignments()
                .instance_arn(&arn)
                .account_id("123456789012")
                .permission_set_arn(&ps_arn)
                .send()
                .await
                .expect("assignments")
                .account_assignments()
                .len()
        };
        (admin_sets, details, admins, assignments)
    })
}

/// Support cases whose subject holds `subject_part`: (service code, category code).
pub fn cases_with(endpoint: &str, subject_part: &str) -> Vec<(String, String)> {
    block_on(async {
        let ctx = sdk(endpoint);
        let s = ctx.support().await.expect("client");
        let out = s
            .describe_cases()
            .include_resolved_cases(true)
            .send()
            .await
            .expect("cases");
        out.cases()
            .iter()
            .filter(|c| c.subject().unwrap_or("").contains(subject_part))
            .map(|c| {
                (
                    c.service_code().unwrap_or("").to_string(),
                    c.category_code().unwrap_or("").to_string(),
                )
            })
            .collect()
    })
}

/// Assignments of the permission set named `set_name` in `account_id`, as the emulator holds
/// them (principal ids, one per assignment: a duplicate shows twice).
pub fn assignments_in(endpoint: &str, account_id: &str, set_name: &str) -> Vec<String> {
    block_on(async {
        let ctx = sdk(endpoint);
        let sso = ctx.sso_admin(None).await.expect("client");
        let inst = sso.list_instances().send().await.expect("instances");
        let arn = inst.instances()[0].instance_arn().expect("arn").to_string();
        let sets = sso
            .list_permission_sets()
            .instance_arn(&arn)
            .send()
            .await
            .expect("sets");
        let mut out = Vec::new();
        for ps in sets.permission_sets() {
            let d = sso
                .describe_permission_set()
                .instance_arn(&arn)
                .permission_set_arn(ps)
                .send()
                .await
                .expect("describe");
            if d.permission_set().and_then(|p| p.name()) != Some(set_name) {
                continue;
            }
            let a = sso
                .list_account_assignments()
                .instance_arn(&arn)
                .account_id(account_id)
                .permission_set_arn(ps)
                .send()
                .await
                .expect("assignments");
            out.extend(
                a.account_assignments()
                    .iter()
                    .map(|a| a.principal_id().unwrap_or_default().to_string()),
            );
        }
        out
    })
}
