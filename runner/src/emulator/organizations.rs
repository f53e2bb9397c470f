//! Organizations as AWS answers it and moto does not: a new organization is still being set up
//! for a while (CreateAccount refused), an account's email is unique across AWS and at most 64
//! characters, an account name at most 50.

use serde_json::{Value, json};

use super::rules::{World, length_ok};
use super::wire::{Answer, Call, UpstreamError};

/// How many CreateAccount requests a new organization refuses while it is set up. AWS says
/// "this can take up to an hour"; a rehearsal shows the wait without taking it.
const FINALIZING: u32 = 2;

const TARGET: &str = "AWSOrganizationsV20161128";

fn input(reason: &str, message: String) -> Answer {
    Answer::error(400, "InvalidInputException", &message, json!({ "Reason": reason }))
}

impl World {
    pub(super) async fn organizations(&self, call: &Call) -> Result<Answer, UpstreamError> {
        match call.op.as_str() {
            "CreateOrganization" => {
                let a = self.moto.forward(call).await?;
                if a.ok() {
                    self.state().finalizing = FINALIZING;
                }
                Ok(a)
            }
            "CreateAccount" => self.create_account(call).await,
            "DescribeCreateAccountStatus" => {
                let id = call.member("CreateAccountRequestId");
                let failed = self.state().failed_creations.get(&id).cloned();
                match failed {
                    Some(status) => Ok(Answer::json_body(200, &json!({ "CreateAccountStatus": status }))),
                    None => self.moto.forward(call).await,
                }
            }
            _ => self.moto.forward(call).await,
        }
    }

    /// Whether the account manages an organization (moto keeps it).
    pub(super) async fn has_organization(&self) -> Result<bool, UpstreamError> {
        let a = self
            .moto
            .call(
                "organizations",
                "us-east-1",
                &format!("{TARGET}.DescribeOrganization"),
                &json!({}),
            )
            .await?;
        Ok(a.ok())
    }

    async fn create_account(&self, call: &Call) -> Result<Answer, UpstreamError> {
        let email = call.member("Email");
        let name = call.member("AccountName");
        // The service model: Email 6 to 64 characters, AccountName 1 to 50.
        if email.chars().count() > 64 {
            return Ok(input(
                "MAX_LENGTH_EXCEEDED",
                format!(
                    "You provided a value that exceeds the maximum allowed length: Email ({} characters; at most 64).",
                    email.chars().count()
                ),
            ));
        }
        if email.chars().count() < 6 || !is_email(&email) {
            return Ok(input(
                "INVALID_EMAIL_ADDRESS_TARGET",
                "You provided an invalid email address.".into(),
            ));
        }
        if !length_ok(&name, 50) {
            return Ok(input(
                "MAX_LENGTH_EXCEEDED",
                "You provided a value that exceeds the maximum allowed length: AccountName (at most 50 characters)."
                    .into(),
            ));
        }
        if !self.has_organization().await? {
            return self.moto.forward(call).await;
        }
        {
            let mut st = self.state();
            if st.finalizing > 0 {
                st.finalizing -= 1;
                return Ok(Answer::error(
                    400,
                    "FinalizingOrganizationException",
                    "AWS Organizations couldn't perform the operation because your organization hasn't finished initializing. This can take up to an hour. Try again later. If after one hour you continue to receive this error, contact AWS Support.",
                    Value::Null,
                ));
            }
        }
        if self.email_taken(&email).await? {
            // AWS takes the request and fails it: the reason is in the creation's status.
            let id = format!("car-{}", random_hex());
            let status = json!({
                "Id": id,
                "AccountName": name,
                "State": "FAILED",
                "FailureReason": "EMAIL_ALREADY_EXISTS",
                "RequestedTimestamp": now(),
                "CompletedTimestamp": now(),
            });
            self.state().failed_creations.insert(id.clone(), status);
            return Ok(Answer::json_body(
                200,
                &json!({ "CreateAccountStatus": { "Id": id, "AccountName": name, "State": "IN_PROGRESS", "RequestedTimestamp": now() } }),
            ));
        }
        self.moto.forward(call).await
    }

    /// Whether an account of the organization (the management account included) has this email.
    async fn email_taken(&self, email: &str) -> Result<bool, UpstreamError> {
        let mut token = Value::Null;
        loop {
            let mut req = json!({});
            if !token.is_null() {
                req["NextToken"] = token;
            }
            let a = self
                .moto
                .call("organizations", "us-east-1", &format!("{TARGET}.ListAccounts"), &req)
                .await?;
            let page = a.json();
            let found = page["Accounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|acct| acct["Email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(email)));
            if found {
                return Ok(true);
            }
            token = page["NextToken"].clone();
            if token.as_str().is_none_or(str::is_empty) {
                return Ok(false);
            }
        }
    }
}

/// The service model's pattern for an email: `[^\s@]+@[^\s@]+\.[^\s@]+`.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let word = |w: &str| !w.is_empty() && !w.contains(char::is_whitespace) && !w.contains('@');
    word(local) && domain.split_once('.').is_some_and(|(a, b)| word(a) && word(b))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn random_hex() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::is_email;

    #[test]
    fn emails_as_the_service_model_takes_them() {
        assert!(is_email("aws+AnyCompany-audit-prod@example.com"));
        for bad in [
            "no-at.example.com",
            "a@b",
            "a b@example.com",
            "@example.com",
            "a@@example.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
