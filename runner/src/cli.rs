//! The command line: clap definitions, with help that teaches each subcommand by example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "runbook",
    version,
    about = "Literate runbooks: one Markdown file that is both the documentation and the automation",
    long_about = "Literate runbooks: one Markdown file that is both the documentation and the automation.\n\n\
Prose explains; fenced step blocks (```manual, ```rhai, ```aws SERVICE.ACTION, ```net ACTION) act.\n\
`runbook run` walks an operator through them, journaling every step so that a run can stop, crash\n\
or hand over and continue later with nothing lost and nothing done twice.",
    after_help = "Examples:\n  runbook check runbooks/\n  runbook rehearse runbooks/part-2-identity-center.md --answers answers.toml\n  runbook run runbooks/part-2-identity-center.md --profile mgmt --region eu-west-1\n\nExit codes: 0 done, 1 a step failed, 2 usage or runbook error, 3 waiting for a person (the message names\nthe answer to give), 130 interrupted.\n\nEnvironment: RUNBOOK_STATE_DIR (journals), RUNBOOK_INPUT_<NAME> (an input's value, secrets too),\nRUNBOOK_ATTEMPT_TIMEOUT, RUNBOOK_LIMITS, RUNBOOK_MOTO_SERVER and RUNBOOK_PYTHON (the rehearsal's emulator),\nRUNBOOK_POLL_INITIAL_MS / RUNBOOK_POLL_CAP_MS, AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL,\nAWS_MAX_ATTEMPTS, NO_COLOR. See the book's \"Running in CI\" page."
)]
pub struct Cli {
    /// When to color output (NO_COLOR is honoured under `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and analyse runbooks without touching AWS.
    #[command(
        after_help = "Examples:\n  runbook check runbooks/\n  runbook check --json runbooks/part-1-new-account.md\n\nChecks TOML bodies, plugin parameters, step ids, ${...} references, Rhai code, attributes and\ninput patterns. Errors name file:line:col. Exit 0 when clean (warnings allowed), 2 on any error."
    )]
    Check {
        /// Runbook files, or directories searched for *.md.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print diagnostics as JSON (one array) on stdout.
        #[arg(long)]
        json: bool,
    },

    /// Show runbooks: title, inputs and steps.
    #[command(after_help = "Examples:\n  runbook list\n  runbook list --json runbooks/ | jq '.[].steps[].id'")]
    List {
        /// Runbook files or directories [default: runbooks/].
        paths: Vec<PathBuf>,
        /// Print the parsed model as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Say what a run would do: every AWS step's read-only plan, nothing changed.
    #[command(
        after_help = "Example:\n  runbook plan runbooks/part-2-identity-center.md --profile mgmt --input admin_user=alice"
    )]
    Plan(PlanArgs),

    /// Check that AWS still holds what a finished run left: reads, look-ups and people's
    /// `verify` checks, nothing changed. Exit 0 as recorded, 2 drifted, 1 error.
    #[command(
        after_help = "Examples:\n  runbook verify runbooks/part-2-identity-center.md --profile mgmt\n  runbook verify runbooks/part-2-identity-center.md --json | jq '.steps[] | select(.finding == \"drifted\")'\n\nA nightly CI job: `runbook verify FILE` exits 2 when AWS drifted from the run's end state\n(an ensure action would create or change, a read answers otherwise, a person's `verify` check\nfails); `runbook run FILE` then repairs what can be repaired. Steps that cannot be re-checked\n(a person's confirmation without `verify`, a call by name that changed AWS) are trusted and\nsaid so. Only a run that finished can be verified (`--run NAME` picks which)."
    )]
    Verify(VerifyArgs),

    /// Execute a runbook step by step, resuming where the last run stopped.
    #[command(
        after_help = "Examples:\n  runbook run runbooks/part-2-identity-center.md\n  runbook run runbooks/part-2-identity-center.md --step\n  runbook run FILE --answers answers.toml --yes        # non-interactive; exit 3 at a question with no answer\n  runbook run FILE --from create-user                  # run again from a step\n\nAnswers file (TOML):\n  [inputs]\n  admin_user = \"alice\"\n  [steps.enable-identity-center]\n  confirm = true"
    )]
    Run(RunArgs),

    /// Run against a local AWS emulator (moto) that runbook starts itself: no AWS account needed.
    #[command(
        after_help = "Examples:\n  runbook rehearse runbooks/part-2-identity-center.md --answers runbooks/rehearsal/part-2-identity-center.toml\n  runbook rehearse runbooks/troubleshooting/not-activated.md --answers runbooks/rehearsal/not-activated.toml --support-plan business\n\nThe emulator is moto server, installed into a virtualenv under the state directory the first\ntime (Python 3 needed), started on a free loopback port and stopped on exit. It plays a\nbrand-new account: its root user (session credentials, as in AWS CloudShell), no organization,\nthe Basic support plan (the Support API refuses), root MFA active, IAM Identity Center not enabled\nuntil the operator enables it. The answers file's [rehearsal] table and the options below change that."
    )]
    Rehearse(RehearseArgs),

    /// Start the rehearsal's emulator and keep it running, for several runs against one account.
    #[command(
        after_help = "Example:\n  runbook emulator --with-organization &\n  # it prints AWS_ENDPOINT_URL=http://127.0.0.1:PORT; then, with any access key:\n  AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1 \\\n    runbook run runbooks/part-2-identity-center.md --answers runbooks/rehearsal/part-2-identity-center.toml\n\nThe emulator of `runbook rehearse` (moto behind the layer that plays AWS), on a free loopback\nport, until interrupted (Ctrl-C, SIGTERM). Runs against it are runs, not\nrehearsals: `if='run.rehearsal'` steps are skipped and the journal is a run's."
    )]
    Emulator(EmulatorArgs),

    /// Show where a run of a runbook stands, step by step (the latest run unless --run).
    #[command(
        after_help = "Examples:\n  runbook status runbooks/part-2-identity-center.md\n  runbook status runbooks/part-2-identity-center.md --run admin_user=bob\n\nRuns and rehearsals of a runbook are listed by `runbook runs FILE`."
    )]
    Status {
        file: PathBuf,
        #[arg(long, default_value = ".runbook", env = "RUNBOOK_STATE_DIR")]
        state_dir: PathBuf,
        /// Which run (see `runbook runs FILE`); default: the most recently updated.
        #[arg(long, value_name = "NAME")]
        run: Option<String>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },

    /// List the runs of a runbook (each `--run NAME` or key-input value, and each rehearsal).
    #[command(
        after_help = "Example:\n  runbook runs runbooks/part-2-identity-center.md\n\nA runbook can be run many times with different inputs; each run keeps its own journal.\nName a run with `run --run NAME`, or mark inputs `key = true` in the runbook block so that\ntheir values name it."
    )]
    Runs {
        file: PathBuf,
        #[arg(long, default_value = ".runbook", env = "RUNBOOK_STATE_DIR")]
        state_dir: PathBuf,
        /// Print the runs as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Build the documentation site from book/ and runbooks/ (mdBook, built in).
    #[command(
        after_help = "Examples:\n  runbook render                       # book/ + runbooks/ -> site/\n  runbook render --out /tmp/site --serve 127.0.0.1:3000\n\nEvery runbook becomes a chapter, in the order runbooks/README.md links them; step blocks\nbecome cards (who acts, parameters, the equivalent AWS CLI); the CLI and plugin references are\ngenerated. A line `<!-- runbooks -->` in book/src/SUMMARY.md marks where the runbooks go.\nRunbooks with errors are refused (exit 2): `runbook check` names them. Secret values never\nappear on the site."
    )]
    Render {
        /// The book: book.toml and src/ with SUMMARY.md.
        #[arg(long, default_value = "book")]
        book: PathBuf,
        /// The runbooks to include as chapters.
        #[arg(long, default_value = "runbooks")]
        runbooks: PathBuf,
        /// Where the site is written.
        #[arg(long, default_value = "site")]
        out: PathBuf,
        /// After building, serve the site on this loopback address (port 0 picks a free one).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:3000")]
        serve: Option<String>,
    },

    /// What a step can do: the built-in actions, and any AWS operation by its API name.
    #[command(
        after_help = "Examples:\n  runbook actions\n  runbook actions sso-admin.remove-assignment\n  runbook actions identitystore\n  runbook actions identitystore:DeleteUser"
    )]
    Actions {
        /// An action (`sso-admin.ensure-assignment`), a service (`iam`) or an operation
        /// (`iam:ListUsers`).
        name: Option<String>,
    },

    /// Print the IAM policy a run of these runbooks needs, computed from their steps.
    #[command(
        after_help = "Examples:\n  runbook permissions runbooks/part-2-identity-center.md\n  runbook permissions --json runbooks/part-2-identity-center.md > policy.json\n  aws iam put-user-policy --user-name operator --policy-name runbook --policy-document file://policy.json\n\nEach built-in action declares the AWS calls it makes (`runbook actions NAME` lists them); a call\nby name (`aws SERVICE:Operation`) makes its one call. Each call maps to its IAM action: the\nservice's signing name and the operation (sso-admin:ListInstances is sso:ListInstances), with AWS's\nknown exceptions (sts:GetCallerIdentity needs no permission; CreateOrganization also needs\niam:CreateServiceLinkedRole; s3:ListObjectsV2 is s3:ListBucket). Without --json: each step with\nits actions, then the policy (one Allow statement per service, its Sid naming the steps). A step\nwith account= needs only sts:AssumeRole on its role: the role's own policy authorises its calls.\nEvery step counts, whatever its if=. Nothing is sent to AWS. See the book's Permissions page."
    )]
    Permissions {
        /// Runbook files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print only the policy document (JSON), for `aws iam put-user-policy` or a role.
        #[arg(long)]
        json: bool,
    },

    /// Print an answers-file template for a runbook: its inputs and the manual steps' questions.
    #[command(
        after_help = "Example:\n  runbook answers runbooks/part-2-identity-center.md > answers.toml\n  # fill it in, then:\n  runbook run runbooks/part-2-identity-center.md --answers answers.toml\n\nValues without a default are commented out until you fill them in; secrets are never\nwritten there (give them as RUNBOOK_INPUT_<NAME> or at the prompt)."
    )]
    Answers { file: PathBuf },

    /// Write an AWS Systems Manager Automation document that does what the runbook does.
    #[command(
        after_help = "Examples:\n  runbook export --ssm runbooks/part-2-identity-center.md -o part-2.ssm.yaml\n  runbook export --ssm runbooks/prerequisites.md --skip firewall\n\nManual steps become approvals (questions become parameters), AWS steps scripts or API calls that\nlook before they create, if= a branch, for-each= a loop. What cannot be exported is an error at\nfile:line:col and nothing is written (exit 2); notes say what changes meaning (--strict: errors).\nStart it with `aws ssm start-automation-execution` (see the book's SSM Automation page)."
    )]
    Export(ExportArgs),

    /// Print shell completions.
    #[command(after_help = "Example:\n  runbook completions bash > /etc/bash_completion.d/runbook")]
    Completions { shell: clap_complete::Shell },
}

/// `export`: what to write, and where.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    pub file: PathBuf,
    /// Export to AWS Systems Manager Automation (schemaVersion 0.3), the one target there is.
    #[arg(long, required = true)]
    pub ssm: bool,
    /// Write the document here instead of to stdout.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ExportFormat::Yaml)]
    pub format: ExportFormat,
    /// Leave a step out (a `net` probe, say, run by hand with `runbook run FILE --only ID`).
    #[arg(long = "skip", value_name = "ID")]
    pub skip: Vec<String>,
    /// Treat notes (what changes meaning in Automation) as errors.
    #[arg(long)]
    pub strict: bool,
    /// Add an ApprovalTopicArn parameter: every approval notifies that SNS topic.
    #[arg(long)]
    pub approval_topic: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    Yaml,
    Json,
}

/// How to reach AWS; read by aws-config like the AWS CLI does.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// Named profile from ~/.aws/config (SSO profiles work).
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Region (the Identity Center home region for sso-admin and identitystore).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Send every AWS call here instead (an emulator, a proxy).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Attempts per AWS call, the first included (standard retry with backoff).
    #[arg(long, env = "AWS_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// One attempt of an AWS call gives up after this long and is retried (`30s`, `2m`).
    #[arg(long, env = "RUNBOOK_ATTEMPT_TIMEOUT", value_name = "DURATION", default_value = "60s",
          value_parser = parse_duration)]
    pub attempt_timeout: std::time::Duration,
    /// AWS limits kept with the project: a TOML file with `[rate]` (FAMILY = requests per
    /// second) and `[in-progress]` (OPERATION = how many at once), each value a number or "off".
    /// `--rate` and `--in-progress` override it. Example: `[rate]` `sso-admin = 10`.
    #[arg(long = "limits", value_name = "FILE", env = "RUNBOOK_LIMITS")]
    pub limits_file: Option<PathBuf>,
    /// Requests per second kept to for an API family, `FAMILY=N` or `FAMILY=off` (repeatable).
    /// Default: AWS's published limits (sso-admin=20, identitystore=20, organizations=10).
    #[arg(long = "rate", value_name = "FAMILY=N")]
    pub rates: Vec<String>,
    /// Operations of a kind kept in progress at once, `OPERATION=N` or `OPERATION=off`
    /// (repeatable). Default: AWS's caps (CreateAccountAssignment=15, CreateAccount=5).
    #[arg(long = "in-progress", value_name = "OPERATION=N")]
    pub in_progress: Vec<String>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    runbook_plugins::aws::parse_duration(s).ok_or_else(|| format!("`{s}` is not a duration such as 500ms, 30s or 2m"))
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// An input value, `name=value` (repeatable).
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Answers file (TOML) with [inputs] and [steps.ID].
    #[arg(long)]
    pub answers: Option<PathBuf>,
    #[arg(long, default_value = ".runbook", env = "RUNBOOK_STATE_DIR")]
    pub state_dir: PathBuf,
    /// Plan against this run's journal (see `runbook runs FILE`).
    #[arg(long, value_name = "NAME")]
    pub run: Option<String>,
    /// Exit 2 when a run would change something or ask a person, 0 when there is nothing to
    /// do, 1 on any error, usage errors included (as `terraform plan -detailed-exitcode`).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Print the plan as JSON: one object per step (step, executor, action, verdict, details).
    #[arg(long)]
    pub json: bool,
    /// Before anything else, ask IAM (iam:SimulatePrincipalPolicy) whether the caller may do every
    /// action the remaining steps need, and stop naming each one it would refuse. The caller needs
    /// iam:SimulatePrincipalPolicy on itself (and iam:GetRole for a role); where IAM cannot
    /// simulate the caller (the root user, no permission to simulate) it says so and goes on.
    #[arg(long)]
    pub check_permissions: bool,
}

/// `verify`: the record to check, and how to reach AWS.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// An input value, `name=value` (repeatable); by default the run's own values.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Answers file (TOML) with [inputs] (for secrets, which the journal never keeps).
    #[arg(long)]
    pub answers: Option<PathBuf>,
    #[arg(long, default_value = ".runbook", env = "RUNBOOK_STATE_DIR")]
    pub state_dir: PathBuf,
    /// Verify this run (see `runbook runs FILE`); default: the most recently updated.
    #[arg(long, value_name = "NAME")]
    pub run: Option<String>,
    /// Print the findings as JSON: one object per step (step, finding, verdict, details).
    #[arg(long)]
    pub json: bool,
}

impl From<VerifyArgs> for PlanArgs {
    fn from(v: VerifyArgs) -> PlanArgs {
        PlanArgs {
            file: v.file,
            aws: v.aws,
            inputs: v.inputs,
            answers: v.answers,
            state_dir: v.state_dir,
            run: v.run,
            detailed_exitcode: false,
            json: v.json,
            check_permissions: false,
        }
    }
}

/// `rehearse`: the run's options, and the account the emulator plays.
#[derive(Debug, Clone, Args)]
pub struct RehearseArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub account: AccountArgs,
}

/// The emulated account, over what the answers file's `[rehearsal]` table says.
#[derive(Debug, Clone, Args)]
pub struct AccountArgs {
    /// The emulated account's support plan; only business and the enterprise plans have the
    /// Support API [default: basic].
    #[arg(long, value_enum)]
    pub support_plan: Option<crate::emulator::SupportPlan>,
    /// The account is signed up but not activated yet: AWS refuses the Support API on any plan.
    #[arg(long)]
    pub not_activated: bool,
    /// The emulated account already manages an AWS organization with all features.
    #[arg(long)]
    pub with_organization: bool,
    /// IAM Identity Center is already enabled (and the organization exists), as after Part 2.
    #[arg(long)]
    pub with_identity_center: bool,
    /// The region the operator enables IAM Identity Center in [default: us-east-1].
    #[arg(long, value_name = "REGION")]
    pub identity_center_region: Option<String>,
    /// The emulated root user has no MFA device (as before Part 1, Step 3).
    #[arg(long)]
    pub without_root_mfa: bool,
}

impl AccountArgs {
    /// `base` (the answers file's `[rehearsal]`, or a brand-new account) with these options.
    pub fn account(&self, mut base: crate::emulator::Account) -> crate::emulator::Account {
        if let Some(p) = self.support_plan {
            base.support_plan = p;
        }
        if self.not_activated {
            base.activated = false;
        }
        if self.with_organization {
            base.organization = true;
        }
        if self.with_identity_center {
            base.identity_center = crate::emulator::IdentityCenter::Enabled;
        }
        if let Some(r) = &self.identity_center_region {
            base.identity_center_region = r.clone();
        }
        if self.without_root_mfa {
            base.root_mfa = false;
        }
        base
    }
}

/// `emulator`: the account to play, and where it is kept.
#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    #[command(flatten)]
    pub account: AccountArgs,
    /// An answers file whose `[rehearsal]` table says what account to play.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Where the emulator's virtualenv is kept.
    #[arg(long, default_value = ".runbook", env = "RUNBOOK_STATE_DIR")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// An input value, `name=value` (repeatable).
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Answers file (TOML) with [inputs] and [steps.ID] for a non-interactive run.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Confirm manual steps that ask nothing.
    #[arg(long)]
    pub yes: bool,
    /// Before every step, show what it will do and ask: run, skip or quit.
    #[arg(long)]
    pub step: bool,
    /// Where the journal lives.
    #[arg(long, default_value = ".runbook", env = "RUNBOOK_STATE_DIR")]
    pub state_dir: PathBuf,
    /// Start at this step (earlier steps keep their recorded outputs).
    #[arg(long, value_name = "ID")]
    pub from: Option<String>,
    /// Run only this step.
    #[arg(long, value_name = "ID")]
    pub only: Option<String>,
    /// Forget the journal and start over.
    #[arg(long)]
    pub restart: bool,
    /// Name this run: each name keeps its own journal, so one runbook can be run for many
    /// inputs (default: the values of the inputs marked `key = true`, else `default`).
    #[arg(long, value_name = "NAME")]
    pub run: Option<String>,
    /// Write NDJSON events for machines to FILE (`-`: stdout, and the lines for people go to
    /// stderr). Each event has `v` (schema version), `ts`, `run` and `event`: run-started,
    /// inputs-changed, step-started, intent, requested, polling, note, warning, log, confirmed,
    /// item-finished, item-failed, fanout-summary, step-finished, step-skipped, step-failed,
    /// waiting, interrupted, run-finished. Secrets are masked as in the journal.
    #[arg(long, value_name = "FILE")]
    pub events: Option<std::path::PathBuf>,
    /// At most this many items of a fan-out run at once.
    #[arg(long, default_value_t = 8)]
    pub max_in_flight: usize,
    /// Before anything else, ask IAM (iam:SimulatePrincipalPolicy) whether the caller may do every
    /// action the remaining steps need, and stop naming each one it would refuse. The caller needs
    /// iam:SimulatePrincipalPolicy on itself (and iam:GetRole for a role); where IAM cannot
    /// simulate the caller (the root user, no permission to simulate) it says so and goes on.
    #[arg(long)]
    pub check_permissions: bool,
}
