//! The whole site build, end to end: staging, `check`, our preprocessor and mdBook's renderer and
//! search index, on an arbitrary runbook and an arbitrary book page (the input split at its first
//! NUL byte). Whatever the text, `render` returns: a site or a refusal, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (runbook, page) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let work = tempfile::tempdir().expect("a scratch directory");
    let root = work.path();
    let write = |path: &str, bytes: &[u8]| {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    };
    write("book/book.toml", b"[book]\ntitle = \"fuzz\"\n");
    write("book/src/SUMMARY.md", b"# Summary\n\n[Page](page.md)\n\n<!-- runbooks -->\n");
    write("book/src/page.md", page);
    write("runbooks/README.md", b"# Index\n\n- [Fuzz](fuzz.md)\n");
    write("runbooks/fuzz.md", runbook);
    let _ = runbook::render::render(&root.join("book"), &root.join("runbooks"), &root.join("site"));
});
