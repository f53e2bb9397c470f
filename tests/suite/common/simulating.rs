//! moto with IAM's SimulatePrincipalPolicy (`moto_simulate.py`, decided by moto's own authorizer),
//! for the permissions preflight.

use std::process::Command;

use super::{Moto, moto_server};

impl Moto {
    /// moto that answers iam:SimulatePrincipalPolicy, started with `env` (as
    /// [`Moto::start_with`]).
    pub fn start_simulating(env: &[(&str, &str)]) -> Moto {
        // The virtualenv's python, beside its moto_server.
        let python = moto_server().with_file_name("python");
        let script = super::repo().join("tests/suite/common/moto_simulate.py");
        Moto::start_program(
            || {
                let mut c = Command::new(&python);
                c.arg(&script);
                c
            },
            env,
        )
    }
}

impl Moto {
    /// moto's authorizer on (every request from now on is authorised against its caller's IAM
    /// policies) or off (none is: a test sets up the state a runbook starts from), through moto's
    /// own `/moto-api/reset-auth` (which sets INITIAL_NO_AUTH_ACTION_COUNT and counts again).
    pub fn authorise(&self, on: bool) {
        let (_, answer) = self.api_post("/moto-api/reset-auth", "text/plain", if on { "0" } else { "inf" });
        assert!(answer.contains("\"ok\""), "reset-auth: {answer}");
    }
}
