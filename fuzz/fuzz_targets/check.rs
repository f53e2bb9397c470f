//! The analyzer behind `runbook check` on arbitrary input: it must never panic, and every
//! diagnostic must render.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use runbook::source::Source;
use runbook_plugins::Registry;

static REGISTRY: OnceLock<Registry> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let registry = REGISTRY.get_or_init(Registry::builtin);
    let text = String::from_utf8_lossy(data);
    let source = Source::new("fuzz.md", text.as_ref());
    let (_runbook, diags) = runbook::analyzer::check(&source, registry);
    for d in &diags {
        let _ = d.render(false);
    }
});
