//! Each runbook's SSM Automation document on the site: exported beside its chapter
//! (`runbooks/NAME.ssm.yaml`) and linked from the chapter's page, or the page says why there is
//! none. `net` steps are left out (an execution has no network of the operator's), and the page
//! says which. Done on the built site, so the chapters and their cards stay as `check` read them.

use std::path::Path;

use super::{RUNBOOKS_DIR, RenderError, Staged, io};
use crate::export::{self, Options};
use crate::model::Family;

/// Where the link goes on a page: at the end of its main content.
const MAIN_END: &str = "</main>";

impl Staged {
    /// Writes every runbook's export into the built `site` and links it from its page.
    pub(super) fn publish_ssm(&self, site: &Path) -> Result<(), RenderError> {
        for (rel, (source, rb, _)) in self.parsed.iter() {
            if rb.steps.is_empty() {
                continue;
            }
            let stem = rel.trim_end_matches(".md");
            let page = site.join(RUNBOOKS_DIR).join(format!("{stem}.html"));
            let Ok(html) = std::fs::read_to_string(&page) else {
                continue;
            };
            let name = format!("{}.ssm.yaml", stem.rsplit('/').next().unwrap_or(stem));
            let up = "../".repeat(stem.matches('/').count() + 1);
            let net: Vec<String> = rb
                .steps
                .iter()
                .filter(|s| {
                    matches!(
                        s.executor,
                        crate::model::Executor::Action {
                            family: Family::Net,
                            ..
                        }
                    )
                })
                .map(|s| s.id.clone())
                .collect();
            let opts = Options {
                skip: net.clone(),
                ..Options::default()
            };
            let guide = format!("<a href=\"{up}ssm-automation.html\">Running on SSM Automation</a>");
            let note = match export::export(source, rb, self.registry, &opts) {
                Ok(e) => {
                    let file = site.join(RUNBOOKS_DIR).join(format!("{stem}.ssm.yaml"));
                    std::fs::write(&file, &e.text).map_err(io(&file))?;
                    let left = if net.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " Left out: {} (run {} where the operator is).",
                            net.iter()
                                .map(|n| format!("<code>{}</code>", esc(n)))
                                .collect::<Vec<_>>()
                                .join(", "),
                            if net.len() == 1 { "it" } else { "them" }
                        )
                    };
                    format!(
                        "<p><strong>Run it on AWS Systems Manager Automation:</strong> <a href=\"{0}\" download>{0}</a>, this runbook as an Automation document (<code>runbook export --ssm</code>).{left} See {guide}.</p>",
                        esc(&name)
                    )
                }
                Err(diags) => {
                    let first = diags
                        .iter()
                        .find(|d| d.is_error())
                        .map(|d| d.message.clone())
                        .unwrap_or_default();
                    format!(
                        "<p><strong>SSM Automation:</strong> this runbook cannot be exported as it is: {}. See {guide}.</p>",
                        esc(&first)
                    )
                }
            };
            if let Some(at) = html.rfind(MAIN_END) {
                let html = format!(
                    "{}<div class=\"runbook-ssm\">{note}</div>\n{}",
                    &html[..at],
                    &html[at..]
                );
                std::fs::write(&page, html).map_err(io(&page))?;
            }
        }
        Ok(())
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
