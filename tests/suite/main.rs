//! The integration suite: one test binary (it links the AWS SDK once), a module per area.
//! Run one area with `cargo test --test suite faults::`, one test by its name as a filter.
//! The browser test (`tests/browser.rs`) stays a binary of its own: it needs Chromium.

mod common;

mod accounts;
mod actions;
mod bounded;
mod calls;
mod check;
mod check_hostile;
mod convergence;
mod coverage;
mod crash;
mod credentials;
mod cycles_and_events;
mod emulated;
mod ensure;
mod fanout;
mod faults;
mod fresh_clone;
mod gate;
mod guide;
mod interpreter;
mod kill_points;
mod limits_file;
mod lost_answers;
mod moved;
mod new_account;
mod one_interpreter;
mod pages;
mod paths;
mod permissions;
mod permissions_every;
mod plan_equals_run;
mod plan_gate;
mod preflight;
mod prompts;
mod props;
mod provisioning;
mod quota;
mod render;
mod run;
mod safety_page;
mod secrets;
mod secrets_by_construction;
mod services;
mod site;
mod ssm_export;
mod ssm_groups;
mod statedir;
mod support_cases;
mod trust;
mod trust_secrets;
mod verify;
