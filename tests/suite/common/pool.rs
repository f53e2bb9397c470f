//! moto servers shared by the tests of one test process, one test at a time each: a test that
//! needs nothing of moto but its API takes one reset from the idle ones (or starts one), and gives
//! it back reset when it passes. Starting moto and loading its first backends is most of a short
//! test's time; a reset is a few milliseconds.
//!
//! Isolation: a server is used by one test at a time and reset before the next; a test that
//! panicked kills its server instead of giving it back. Only tests that leave nothing behind but
//! resources take one (`Moto::shared`): not those with a fault proxy in front (a held request
//! could reach moto after the test ended), a killed or background runbook, moto's authorizer or
//! state transitions (a reset keeps them), or a moto of their own flavour.
//!
//! Idle servers outlive no test process: each runs under a watchdog that ends it when the process
//! that started it is gone (its parent changes), however that process ended.

use std::ops::Deref;
use std::process::Command;
use std::sync::Mutex;

use super::{Moto, moto_server};

/// moto_server's own `main`, with a thread that ends it when its parent is gone.
const WATCHDOG: &str = "
import os, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from moto.server import main
sys.exit(main(sys.argv[1:]))
";

static IDLE: Mutex<Vec<Moto>> = Mutex::new(Vec::new());

/// A moto lent to one test; given back reset when the test passes.
pub struct Lent(Option<Moto>);

impl Deref for Lent {
    type Target = Moto;

    fn deref(&self) -> &Moto {
        self.0.as_ref().expect("lent until dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(moto) = self.0.take() else { return };
        if std::thread::panicking() || !moto.try_reset() {
            return; // dropped: killed
        }
        IDLE.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(moto);
    }
}

impl Moto {
    /// A moto of this test's own while it runs, reused by later tests of this process (see the
    /// module's doc for which tests may take one).
    pub fn shared() -> Lent {
        let idle = IDLE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        if let Some(moto) = idle {
            return Lent(Some(moto));
        }
        // The virtualenv's python, beside its moto_server; a moto_server of another kind
        // (RUNBOOK_MOTO_SERVER) is started as it is, and not kept.
        let python = moto_server().with_file_name("python");
        if !python.exists() {
            return Lent(Some(Moto::start()));
        }
        Lent(Some(Moto::start_program(
            || {
                let mut c = Command::new(&python);
                c.args(["-c", WATCHDOG]);
                c
            },
            &[],
        )))
    }

    /// Forgets every resource; false when moto did not say so.
    fn try_reset(&self) -> bool {
        self.try_api_post("/moto-api/reset", "text/plain", "")
            .is_ok_and(|(status, _)| status == 200)
    }
}
