//! Property tests over the parser and the analyzer, in every test run: whatever the Markdown, `check`
//! returns (no panic), every diagnostic points inside the file, and rendering a diagnostic works.
//! The fuzz targets (fuzz/) explore the same entry points with coverage guidance.

use proptest::prelude::*;
use runbook::source::Source;
use runbook_plugins::Registry;

/// Pieces that make up runbook-like Markdown: fences with executor words, TOML, `${}`, attributes.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("# Title\n".to_string()),
        Just("## Section\n".to_string()),
        Just("```runbook\n".to_string()),
        Just("```aws sts.whoami".to_string()),
        Just("```aws organizations.ensure-account".to_string()),
        Just("```aws sso-admin.ensure-assignment".to_string()),
        Just("```manual".to_string()),
        Just("```rhai".to_string()),
        Just("```net check-reachable".to_string()),
        Just("```".to_string()),
        Just("~~~".to_string()),
        Just(" id=a".to_string()),
        Just(" id=a-b".to_string()),
        Just(" if='inputs.x == \"y\"'".to_string()),
        Just(" for-each=\"[1, 2]\"".to_string()),
        Just(" on-failure=../../x.md".to_string()),
        Just(" timeout=10m".to_string()),
        Just(" retries=x".to_string()),
        Just("\n".to_string()),
        Just("[inputs.x]\n".to_string()),
        Just("prompt = \"p\"\n".to_string()),
        Just("pattern = \"[a-\"\n".to_string()),
        Just("secret = true\n".to_string()),
        Just("[ask.q]\n".to_string()),
        Just("confirm = \"${inputs.x}\"\n".to_string()),
        Just("name = \"${steps.a.b}\"\n".to_string()),
        Just("email = \"${ item \"\n".to_string()),
        Just("verify = \"aws iam.check-root-mfa\"\n".to_string()),
        Just("#{ a: 1 }\n".to_string()),
        Just("- list item\n  ".to_string()),
        Just("> quote ".to_string()),
        Just("\u{feff}".to_string()),
        Just("é€𝄞".to_string()),
        Just("\r\n".to_string()),
        "[ -~]{0,12}",
    ]
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
}

fn check_holds(text: &str) {
    let registry = Registry::builtin();
    let source = Source::new("p.md", text);
    let (rb, diags) = runbook::analyzer::check(&source, &registry);
    let lines = text.split('\n').count();
    for d in &diags {
        assert!(d.line <= lines.max(1), "line {} of {lines}: {d:?}", d.line);
        let _ = d.render(false);
    }
    for s in &rb.steps {
        assert!(s.span.start <= s.span.end && s.span.end <= text.len(), "{s:?}");
        assert!(!s.id.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn runbook_like_markdown_never_panics(doc in document()) {
        check_holds(&doc);
    }

    #[test]
    fn arbitrary_text_never_panics(doc in "\\PC{0,400}") {
        check_holds(&doc);
    }

    #[test]
    fn arbitrary_bytes_read_as_lossy_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_holds(&String::from_utf8_lossy(&bytes));
    }

    /// `${...}` splitting: never panics, and literal pieces plus expressions cover the input.
    #[test]
    fn interpolation_pieces_never_panic(s in "[a-z${}\"\\\\ ]{0,40}") {
        use runbook::interp::Piece;
        if let Ok(pieces) = runbook::interp::pieces(&s) {
            // The pieces are the whole string: literals (with `${` written `$${` again) and
            // expressions in their `${...}` rebuild it exactly.
            let mut rebuilt = String::new();
            for p in &pieces {
                match p {
                    Piece::Lit(l) => rebuilt.push_str(&l.replace("${", "$${")),
                    Piece::Expr { code, span } => {
                        prop_assert_eq!(&s[span.clone()], code.as_str());
                        rebuilt.push_str(&format!("${{{code}}}"));
                    }
                }
            }
            prop_assert_eq!(rebuilt, s.clone());
        }
        for r in runbook::interp::refs(&s) {
            let span = match r {
                runbook::interp::Ref::Input { span, .. } | runbook::interp::Ref::Step { span, .. } => span,
            };
            prop_assert!(span.end <= s.len() && span.start <= span.end);
        }
    }
}
