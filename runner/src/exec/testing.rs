//! What the executor's unit tests share: runbooks written to a temporary runbooks directory and
//! checked as `run` checks them, and a [`Shared`] assembled around one with a journal that is read
//! and never written, a silent Ui and no AWS. Nothing here sends a request: the caller's identity
//! is set, never asked, and the endpoint is a closed port, so a decision that reached for AWS
//! fails instead of waiting.

use std::path::Path;
use std::sync::{Arc, Mutex};

use runbook_plugins::aws::sts::Identity;
use runbook_plugins::{AwsOptions, Context, PollSettings};

use super::{Digester, EventSink, Parts, RunOptions, Shared};
use crate::inputs::Answers;
use crate::journal::{self, Journal};
use crate::model::{Runbook, Step};
use crate::redact::Redactor;
use crate::ui::Ui;

/// A runbook directory with `t.md` and the runbooks beside it, and a run of `t.md` assembled.
pub(super) struct Fixture {
    pub shared: Arc<Shared>,
    pub dir: tempfile::TempDir,
    /// What `--events` would have carried: every journal line, as it was recorded.
    events: Arc<Mutex<Vec<u8>>>,
}

impl Fixture {
    /// `t.md` with `text`, nothing beside it, assembled as a run (`planning: false`).
    pub fn run(text: &str) -> Fixture {
        Builder::new(text).build()
    }

    /// The same, assembled as a plan.
    pub fn plan(text: &str) -> Fixture {
        Builder::new(text).planning().build()
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> &Step {
        step(&self.shared.runbook, id)
    }

    /// The events recorded so far, each as `event` and, when it has one, `step` (`item_key`):
    /// `step-started a`, `item-failed f 2`.
    pub fn recorded(&self) -> Vec<String> {
        let bytes = self.events.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("an event is JSON");
                [&v["event"], &v["step"], &v["item_key"]]
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// The events recorded so far, whole.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let bytes = self.events.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).expect("an event is JSON"))
            .collect()
    }

    /// The recorded state of a step.
    pub fn state(&self, id: &str) -> Option<crate::journal::StepState> {
        self.shared.step_state(id)
    }
}

/// An in-memory `--events` stream.
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The step with this id.
pub(super) fn step<'a>(rb: &'a Runbook, id: &str) -> &'a Step {
    rb.steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step `{id}`"))
}

/// How a [`Fixture`] is made.
pub(super) struct Builder {
    text: String,
    beside: Vec<(String, String)>,
    planning: bool,
    pending_dir: bool,
    answers: Option<&'static str>,
    account: Option<&'static str>,
    opts: Box<dyn FnOnce(&mut RunOptions)>,
}

impl Builder {
    pub fn new(text: &str) -> Builder {
        Builder {
            text: text.into(),
            beside: Vec::new(),
            planning: false,
            pending_dir: false,
            answers: None,
            account: Some("111111111111"),
            opts: Box::new(|_| {}),
        }
    }

    /// Another runbook in the same directory (for `on-failure=`).
    pub fn beside(mut self, name: &str, text: &str) -> Builder {
        self.beside.push((name.into(), text.into()));
        self
    }

    pub fn planning(mut self) -> Builder {
        self.planning = true;
        self
    }

    /// The state directory's `pending/`, made as a run makes it (without it, every mark fails).
    pub fn pending_dir(mut self) -> Builder {
        self.pending_dir = true;
        self
    }

    /// An answers file (TOML).
    pub fn answers(mut self, toml: &'static str) -> Builder {
        self.answers = Some(toml);
        self
    }

    /// The account the credentials are for (`None`: not known).
    pub fn account(mut self, account: Option<&'static str>) -> Builder {
        self.account = account;
        self
    }

    pub fn opts(mut self, f: impl FnOnce(&mut RunOptions) + 'static) -> Builder {
        self.opts = Box::new(f);
        self
    }

    pub fn build(self) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let books = dir.path().join("runbooks");
        std::fs::create_dir_all(&books).expect("mkdir");
        for (name, text) in &self.beside {
            std::fs::write(books.join(name), text).expect("write");
        }
        let path = books.join("t.md");
        std::fs::write(&path, &self.text).expect("write");
        let checked = crate::analyzer::checked(&path).expect("read");
        let errors: Vec<String> = checked
            .diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.render(false))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let state_dir = dir.path().join("state");
        std::fs::create_dir_all(&state_dir).expect("mkdir");
        let redactor = Redactor::default();
        let aws = AwsOptions {
            region: Some("eu-west-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            static_credentials: Some(("AKIDUNITTEST".into(), "unit-test-secret".into())),
            ..AwsOptions::default()
        };
        let ctx = Context::with_limits(
            aws,
            &state_dir,
            PollSettings::default(),
            runbook_plugins::aws::published_limits(),
        );
        let journal = Journal::detached(
            &state_dir.join("journal"),
            Journal::fresh_state(&checked.runbook.path),
            redactor.clone(),
        )
        .expect("journal");
        let pending = if self.pending_dir {
            journal::Pending::open(&state_dir)
        } else {
            journal::Pending::read_only(&state_dir)
        }
        .expect("pending");
        let mut opts = options(&state_dir);
        if let Some(toml) = self.answers {
            let file = dir.path().join("answers.toml");
            std::fs::write(&file, toml).expect("write");
            opts.answers = Some(file);
        }
        (self.opts)(&mut opts);
        let answers = match self.answers {
            Some(t) => toml::from_str::<Answers>(t).expect("answers"),
            None => Answers::default(),
        };
        let events = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared::assemble(Parts {
            source: checked.source,
            runbook: checked.runbook,
            ctx,
            opts,
            answers,
            ui: Ui::silent(redactor.clone()),
            redactor,
            journal,
            digester: Digester::with_own_key(None, vec![7; 32]),
            pending: (pending.0, Digester::new(pending.1)),
            events: Arc::new(EventSink {
                out: Mutex::new(Some(Box::new(Buffer(events.clone())))),
                name: "-".into(),
                failed: Mutex::new(None),
            }),
            planning: self.planning,
        });
        if let Some(account) = self.account {
            let _ = shared.identity.set(Ok(identity(account)));
        }
        Fixture { shared, dir, events }
    }
}

/// A caller in `account`, as STS would describe an Identity Center user there.
pub(super) fn identity(account: &str) -> Identity {
    Identity {
        account_id: account.into(),
        arn: format!("arn:aws:sts::{account}:assumed-role/AWSReservedSSO_Admin/alice"),
        user_id: "AROAUNITTEST:alice".into(),
        is_root: false,
        kind: "identity-center".into(),
        name: "AdministratorAccess/alice".into(),
        credentials: "temporary".into(),
    }
}

/// A run's options as `runbook run t.md` gives them, with no flags.
pub(super) fn options(state_dir: &Path) -> RunOptions {
    RunOptions {
        inputs: Vec::new(),
        answers: None,
        yes: false,
        step_mode: false,
        from: None,
        only: None,
        restart: false,
        max_in_flight: 4,
        state_dir: state_dir.to_path_buf(),
        color: false,
        rehearsal: false,
        run_name: None,
        events: None,
        failed: None,
        depth: 0,
    }
}
