//! IAM Identity Center as AWS answers it and moto does not: no instance until the operator
//! enables one (then one, in one home region), a permission set's name unique within its
//! instance and at most 32 characters, provisioning status and the accounts a changed set has
//! not reached yet, users synchronized from a directory or an IdP, and UpdateUser.

use serde_json::{Value, json};

use super::IdentityCenter;
use super::account::IdentitySource;
use super::rules::{World, invalid, length_ok};
use super::wire::{Answer, Call, UpstreamError};

const SSO: &str = "SWBExternalService";
const STORE: &str = "AWSIdentityStore";

/// Calls that change what the accounts' roles of a permission set should be: after one, the
/// set's accounts are on an older version until it is provisioned again.
pub const CHANGES_A_SET: [&str; 8] = [
    "UpdatePermissionSet",
    "AttachManagedPolicyToPermissionSet",
    "DetachManagedPolicyFromPermissionSet",
    "PutInlinePolicyToPermissionSet",
    "DeleteInlinePolicyFromPermissionSet",
    "AttachCustomerManagedPolicyReferenceToPermissionSet",
    "DetachCustomerManagedPolicyReferenceFromPermissionSet",
    "PutPermissionsBoundaryToPermissionSet",
];

/// DescribePermissionSetProvisioningStatus, which moto answers with HTTP 500: the request
/// succeeded, as moto provisions at once.
pub fn provisioning_status(call: &Call) -> Answer {
    Answer::json_body(
        200,
        &json!({ "PermissionSetProvisioningStatus": {
            "RequestId": call.member("ProvisionPermissionSetRequestId"),
            "Status": "SUCCEEDED",
        } }),
    )
}

impl World {
    pub(super) async fn sso_admin(&self, call: &Call) -> Result<Answer, UpstreamError> {
        let op = call.op.as_str();
        match op {
            "ListInstances" => self.list_instances(call).await,
            // moto: HTTP 500. AWS: the request's status; moto provisions at once.
            "DescribePermissionSetProvisioningStatus" => Ok(provisioning_status(call)),
            // moto has no such listing and settles every creation at once: none is in progress.
            "ListAccountAssignmentCreationStatus" if call.json()["Filter"]["Status"] == "IN_PROGRESS" => Ok(
                Answer::json_body(200, &json!({ "AccountAssignmentsCreationStatus": [] })),
            ),
            "CreatePermissionSet" => self.create_permission_set(call).await,
            "UpdatePermissionSet" => self.update_permission_set(call).await,
            "ListAccountsForProvisionedPermissionSet"
                if call.member("ProvisioningStatus") == "LATEST_PERMISSION_SET_NOT_PROVISIONED" =>
            {
                // moto ignores the filter. At AWS only a set changed since it was last
                // provisioned has accounts on an older version.
                let changed = self.state().changed_sets.contains(&call.member("PermissionSetArn"));
                if changed {
                    self.moto.forward(call).await
                } else {
                    Ok(Answer::json_body(200, &json!({ "AccountIds": [] })))
                }
            }
            _ => {
                let a = self.moto.forward(call).await?;
                if a.ok() {
                    let set = call.member("PermissionSetArn");
                    let mut st = self.state();
                    if CHANGES_A_SET.contains(&op) {
                        st.changed_sets.insert(set);
                    } else if op == "ProvisionPermissionSet" || op == "DeletePermissionSet" {
                        st.changed_sets.remove(&set);
                    }
                }
                Ok(a)
            }
        }
    }

    /// moto has an instance in every region from the start. AWS has none until a person enables
    /// Identity Center in the console of the management account, and then one, in the region
    /// they chose.
    async fn list_instances(&self, call: &Call) -> Result<Answer, UpstreamError> {
        let enabled = self.state().identity_center.clone();
        if enabled.as_deref() == Some(call.region.as_str()) {
            return self.moto.forward(call).await;
        }
        if enabled.is_none()
            && self.account.identity_center == IdentityCenter::WhenAsked
            && self.has_organization().await?
        {
            // The runbook looked and asked: the operator enables it now, in their home region.
            self.state().identity_center = Some(self.account.identity_center_region.clone());
        }
        Ok(Answer::json_body(200, &json!({ "Instances": [] })))
    }

    async fn create_permission_set(&self, call: &Call) -> Result<Answer, UpstreamError> {
        let req = call.json();
        let name = req["Name"].as_str().unwrap_or("");
        let instance = req["InstanceArn"].as_str().unwrap_or("");
        // The service model: Name 1 to 32 of [\w+=,.@-], Description at most 700.
        if !length_ok(name, 32) || !name.chars().all(|c| c.is_alphanumeric() || "_+=,.@-".contains(c)) {
            return Ok(invalid(format!(
                "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must have length less than or equal to 32 and match [\\w+=,.@-]+"
            )));
        }
        if req["Description"].as_str().is_some_and(|d| d.chars().count() > 700) {
            return Ok(invalid(
                "Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 700".into(),
            ));
        }
        if self.permission_set_named(&call.region, instance, name).await?.is_some() {
            return Ok(Answer::error(
                409,
                "ConflictException",
                &format!("PermissionSet with name {name} already exists"),
                Value::Null,
            ));
        }
        if req["SessionDuration"].is_null() {
            // AWS's default is one hour; moto stores none and answers a number the SDK refuses.
            let mut req = req.clone();
            req["SessionDuration"] = json!("PT1H");
            return self
                .moto
                .call("sso", &call.region, &format!("{SSO}.CreatePermissionSet"), &req)
                .await;
        }
        self.moto.forward(call).await
    }

    /// The permission set of this name in the instance, if any (moto lets two share a name).
    async fn permission_set_named(
        &self,
        region: &str,
        instance: &str,
        name: &str,
    ) -> Result<Option<String>, UpstreamError> {
        let mut token = Value::Null;
        loop {
            let mut req = json!({ "InstanceArn": instance });
            if !token.is_null() {
                req["NextToken"] = token;
            }
            let page = self
                .moto
                .call("sso", region, &format!("{SSO}.ListPermissionSets"), &req)
                .await?
                .json();
            for arn in page["PermissionSets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let d = self
                    .moto
                    .call(
                        "sso",
                        region,
                        &format!("{SSO}.DescribePermissionSet"),
                        &json!({ "InstanceArn": instance, "PermissionSetArn": arn }),
                    )
                    .await?
                    .json();
                if d["PermissionSet"]["Name"].as_str() == Some(name) {
                    return Ok(Some(arn.to_string()));
                }
            }
            token = page["NextToken"].clone();
            if token.as_str().is_none_or(str::is_empty) {
                return Ok(None);
            }
        }
    }

    /// AWS changes only the members a request gives; moto clears the others.
    async fn update_permission_set(&self, call: &Call) -> Result<Answer, UpstreamError> {
        let mut req = call.json();
        let now = self
            .moto
            .call(
                "sso",
                &call.region,
                &format!("{SSO}.DescribePermissionSet"),
                &json!({ "InstanceArn": req["InstanceArn"], "PermissionSetArn": req["PermissionSetArn"] }),
            )
            .await?
            .json();
        for member in ["Description", "SessionDuration", "RelayState"] {
            if req[member].is_null() && !now["PermissionSet"][member].is_null() {
                req[member] = now["PermissionSet"][member].clone();
            }
        }
        let a = self
            .moto
            .call("sso", &call.region, &format!("{SSO}.UpdatePermissionSet"), &req)
            .await?;
        if a.ok() {
            self.state().changed_sets.insert(call.member("PermissionSetArn"));
        }
        Ok(a)
    }

    pub(super) async fn identity_store(&self, call: &Call) -> Result<Answer, UpstreamError> {
        match call.op.as_str() {
            "CreateUser" => {
                let req = call.json();
                let user = req["UserName"].as_str().unwrap_or("");
                if !length_ok(user, 128) {
                    return Ok(invalid(format!(
                        "Value at 'userName' failed to satisfy constraint: Member must have length between 1 and 128 ({} characters)",
                        user.chars().count()
                    )));
                }
                self.moto.forward(call).await
            }
            // AWS keeps one membership per user and group (moto makes another).
            "CreateGroupMembership" => {
                let req = call.json();
                let look = json!({
                    "IdentityStoreId": req["IdentityStoreId"],
                    "GroupId": req["GroupId"],
                    "MemberId": req["MemberId"],
                });
                let found = self
                    .moto
                    .call(
                        "identitystore",
                        &call.region,
                        &format!("{STORE}.GetGroupMembershipId"),
                        &look,
                    )
                    .await?;
                if found.ok() {
                    return Ok(Answer::error(
                        409,
                        "ConflictException",
                        "Member already exists in the group",
                        Value::Null,
                    ));
                }
                self.moto.forward(call).await
            }
            "GetUserId" => self.get_user_id(call).await,
            "UpdateUser" => self.update_user(call).await,
            "DescribeUser" => {
                let a = self.moto.forward(call).await?;
                if !a.ok() {
                    return Ok(a);
                }
                let mut user = a.json();
                self.apply_updates(&mut user);
                Ok(a.with_body(user.to_string()))
            }
            "ListUsers" => {
                let a = self.moto.forward(call).await?;
                if !a.ok() {
                    return Ok(a);
                }
                let mut page = a.json();
                if let Some(users) = page["Users"].as_array_mut() {
                    users.iter_mut().for_each(|u| self.apply_updates(u));
                }
                Ok(a.with_body(page.to_string()))
            }
            "DeleteUser" => {
                let a = self.moto.forward(call).await?;
                if a.ok() {
                    self.state().user_updates.remove(&call.member("UserId"));
                }
                Ok(a)
            }
            _ => self.moto.forward(call).await,
        }
    }

    /// A user in sync scope of Active Directory or the external IdP is not there at the first
    /// look (the sync has not run yet) and is there from the next one on.
    async fn get_user_id(&self, call: &Call) -> Result<Answer, UpstreamError> {
        let a = self.moto.forward(call).await?;
        let req = call.json();
        let name = req["AlternateIdentifier"]["UniqueAttribute"]["AttributeValue"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let synced = self.account.identity_source != IdentitySource::IdentityCenterDirectory
            && self.account.synced_users.contains(&name);
        if a.ok() || !synced {
            return Ok(a);
        }
        if self.state().sync_started.insert(name.clone()) {
            return Ok(a);
        }
        let store = req["IdentityStoreId"].clone();
        let made = self
            .moto
            .call(
                "identitystore",
                &call.region,
                &format!("{STORE}.CreateUser"),
                &json!({
                    "IdentityStoreId": store,
                    "UserName": name,
                    "DisplayName": name,
                    "Name": { "GivenName": name, "FamilyName": "(synced)" },
                    "Emails": [{ "Value": format!("{name}@example.com"), "Type": "work", "Primary": true }],
                }),
            )
            .await?;
        if !made.ok() {
            return Ok(made);
        }
        self.moto.forward(call).await
    }

    /// moto has no UpdateUser: the layer keeps the changes and shows them in what moto answers.
    async fn update_user(&self, call: &Call) -> Result<Answer, UpstreamError> {
        let req = call.json();
        let exists = self
            .moto
            .call(
                "identitystore",
                &call.region,
                &format!("{STORE}.DescribeUser"),
                &json!({ "IdentityStoreId": req["IdentityStoreId"], "UserId": req["UserId"] }),
            )
            .await?;
        if !exists.ok() {
            return Ok(exists);
        }
        let mut ops = Vec::new();
        for op in req["Operations"].as_array().into_iter().flatten() {
            let path = op["AttributePath"].as_str().unwrap_or("");
            if ![
                "displayName",
                "name.givenName",
                "name.familyName",
                "emails",
                "title",
                "nickName",
            ]
            .contains(&path)
            {
                return Ok(invalid(format!(
                    "attribute path `{path}` is not one the rehearsal can change"
                )));
            }
            ops.push((path.to_string(), op["AttributeValue"].clone()));
        }
        self.state()
            .user_updates
            .entry(call.member("UserId"))
            .or_default()
            .extend(ops);
        Ok(Answer::json_body(200, &json!({})))
    }

    fn apply_updates(&self, user: &mut Value) {
        let Some(id) = user["UserId"].as_str().map(String::from) else {
            return;
        };
        let Some(ops) = self.state().user_updates.get(&id).cloned() else {
            return;
        };
        for (path, value) in ops {
            match path.as_str() {
                "displayName" => user["DisplayName"] = value,
                "title" => user["Title"] = value,
                "nickName" => user["NickName"] = value,
                "name.givenName" => user["Name"]["GivenName"] = value,
                "name.familyName" => user["Name"]["FamilyName"] = value,
                "emails" => {
                    // Sent in the SCIM form (`value`, `type`, `primary`); described as the API's.
                    let emails: Vec<Value> = value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| {
                            let field = |lower: &str, upper: &str| {
                                if e[lower].is_null() { e[upper].clone() } else { e[lower].clone() }
                            };
                            json!({ "Value": field("value", "Value"), "Type": field("type", "Type"), "Primary": field("primary", "Primary") })
                        })
                        .collect();
                    user["Emails"] = Value::Array(emails);
                }
                _ => {}
            }
        }
    }
}
