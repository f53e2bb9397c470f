//! The parser, then what the site makes of its result (step cards, manual step bodies, `${}`):
//! none of it may panic on any input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use runbook::source::Source;
use runbook_plugins::Registry;

static REGISTRY: OnceLock<Registry> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let registry = REGISTRY.get_or_init(Registry::builtin);
    let text = String::from_utf8_lossy(data);
    let source = Source::new("runbooks/fuzz.md", text.as_ref());
    let (runbook, _diags) = runbook::parser::parse(&source);
    for step in &runbook.steps {
        let mut sink = Vec::new();
        let _ = runbook::manual::parse(&source, step, &mut sink);
        let _ = runbook::interp::pieces(&step.body);
    }
    let _ = runbook::render::cards::cards(&source, "runbooks/fuzz.md", &runbook, registry, false);
});
