//! A read answered in pages is read to its end, as the SDK paginators do, from the model's
//! pagination data (`paginators-1.json`): the input tokens, the output tokens (a member, a nested
//! member, `NextMarker || Contents[-1].Key`), `more_results`, and the result keys whose lists are
//! joined. Reads without pagination data fall back to the common spellings (`NextToken`,
//! `nextToken`, IAM's `Marker` with `IsTruncated`).
//!
//! A short list read as a whole one is how a user is deleted with assignments left (attacker
//! finding, session 6: the offboarding runbook removed the first page and deleted the user). So a
//! token seen before, a page that says more follow and gives no token, or more than
//! [`MAX_PAGES`] pages is an error, never a short list.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::model::{OneOrMore, Paginator};
use super::{Call, Options, wire};
use crate::context::Context;
use crate::error::PluginError;

/// At most so many pages of one read (1,000 pages of 100 is far past any account's assignments);
/// more is an error, never a short list.
const MAX_PAGES: usize = 1_000;

/// A member path of an answer: `NextToken`, `DistributionList.NextMarker`, `Contents[-1].Key`.
fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, part| match part.split_once('[') {
        Some((name, index)) => {
            let list = if name.is_empty() { v } else { v.get(name)? }.as_array()?;
            let i: i64 = index.trim_end_matches(']').parse().ok()?;
            let i = if i < 0 {
                list.len().checked_sub(i.unsigned_abs() as usize)?
            } else {
                i as usize
            };
            list.get(i)
        }
        None => v.get(part),
    })
}

/// An output token's value: the first alternative of `A || B` that has one.
fn token(page: &Value, expr: &str) -> Option<Value> {
    expr.split("||")
        .map(str::trim)
        .filter_map(|p| get(page, p))
        .find(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            _ => true,
        })
        .cloned()
}

fn get_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(v, |v, part| v.get_mut(part))
}

fn remove(v: &mut Value, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (get_mut(v, p), l),
        None => (Some(v), path),
    };
    if let Some(Value::Object(o)) = parent {
        o.remove(last);
    }
}

/// The pagination of an operation: the model's, or the common spellings its input takes.
struct Pagination {
    inputs: Vec<String>,
    outputs: Vec<String>,
    more: Option<String>,
    results: Vec<String>,
}

fn pagination(call: Call) -> Option<Pagination> {
    if let Some(Paginator {
        input_token,
        output_token,
        more_results,
        result_key,
    }) = &call.operation.paginator
    {
        let owned = |o: &OneOrMore| o.all().into_iter().map(String::from).collect::<Vec<_>>();
        return Some(Pagination {
            inputs: owned(input_token),
            outputs: owned(output_token),
            more: more_results.clone(),
            results: result_key.as_ref().map(owned).unwrap_or_default(),
        });
    }
    let takes = |member: &str| call.input().is_some_and(|s| s.members.contains_key(member));
    // The Support API spells it `nextToken`.
    let t = ["NextToken", "nextToken", "Marker"].into_iter().find(|t| takes(t))?;
    Some(Pagination {
        inputs: vec![t.into()],
        outputs: vec![t.into()],
        more: (t == "Marker").then(|| "IsTruncated".into()),
        results: Vec::new(),
    })
}

/// Appends a page's lists to the whole: the result keys, or (without pagination data) every
/// list the page holds.
fn join(all: &mut Value, page: Value, results: &[String]) {
    if results.is_empty() {
        if let (Some(all), Value::Object(page)) = (all.as_object_mut(), page) {
            for (k, v) in page {
                match (all.get_mut(&k), v) {
                    (Some(Value::Array(joined)), Value::Array(more)) => joined.extend(more),
                    (_, v) => {
                        all.insert(k, v);
                    }
                }
            }
        }
        return;
    }
    for key in results {
        let Some(Value::Array(more)) = get(&page, key).cloned() else {
            continue;
        };
        match get_mut(all, key) {
            Some(Value::Array(joined)) => joined.extend(more),
            _ => set(all, key, Value::Array(more)),
        }
    }
}

fn set(v: &mut Value, path: &str, x: Value) {
    let mut at = v;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Some(o) = at.as_object_mut() else { return };
        if i + 1 == parts.len() {
            o.insert(part.to_string(), x);
            return;
        }
        at = o.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
}

pub(super) async fn read_all(
    ctx: &Context,
    call: Call,
    mut request: Value,
    opts: Options,
) -> Result<Value, PluginError> {
    let send = |request: Value| async move {
        match wire::send(ctx, call, &request, opts).await {
            Ok(answer) => Ok(answer.body),
            Err(wire::Failure::Refused(e) | wire::Failure::Unknown(e)) => Err(e),
        }
    };
    let mut body = send(request.clone()).await?;
    let Some(pagination) = pagination(call) else {
        return Ok(body);
    };
    let short = |why: &str| PluginError::Failed {
        what: format!("reading {}", call.full_name()),
        reason: format!("{why}: the list would be short"),
        request_id: None,
        hint: Some("AWS answered pages that do not add up; run the step again, and report it if it persists".into()),
    };
    let mut seen = HashSet::new();
    let mut pages = 1;
    let mut page = body.clone();
    loop {
        let more = pagination
            .more
            .as_ref()
            .map(|m| get(&page, m) == Some(&Value::Bool(true)));
        let tokens: Vec<Option<Value>> = pagination.outputs.iter().map(|o| token(&page, o)).collect();
        let any = tokens.iter().any(Option::is_some);
        match more {
            Some(false) => break,
            Some(true) if !any => return Err(short("a page said more follow and gave no token")),
            _ if !any => break,
            _ => {}
        }
        let key = serde_json::to_string(&tokens).unwrap_or_default();
        if !seen.insert(key) {
            return Err(short("AWS repeated a page token"));
        }
        if pages >= MAX_PAGES {
            return Err(short(&format!("more than {MAX_PAGES} pages")));
        }
        pages += 1;
        if let Some(o) = request.as_object_mut() {
            for (input, t) in pagination.inputs.iter().zip(tokens) {
                match t {
                    Some(t) => o.insert(input.clone(), t),
                    None => o.remove(input),
                };
            }
        }
        page = send(request.clone()).await?;
        join(&mut body, page.clone(), &pagination.results);
    }
    // The whole list has no next page.
    for o in &pagination.outputs {
        for p in o.split("||").map(str::trim).filter(|p| !p.contains('[')) {
            remove(&mut body, p);
        }
    }
    if let Some(m) = &pagination.more {
        if get(&body, m).is_some() {
            set(&mut body, m, Value::Bool(false));
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_read_where_the_model_says() {
        let page = json!({"NextMarker": "", "Contents": [{"Key": "a"}, {"Key": "b"}], "IsTruncated": true});
        assert_eq!(token(&page, "NextMarker || Contents[-1].Key"), Some(json!("b")));
        let page = json!({"DistributionList": {"NextMarker": "m2", "Items": [1]}});
        assert_eq!(token(&page, "DistributionList.NextMarker"), Some(json!("m2")));
        assert_eq!(token(&json!({}), "NextToken"), None);
        let mut all = json!({"DistributionList": {"Items": [1], "NextMarker": "m2"}});
        join(
            &mut all,
            json!({"DistributionList": {"Items": [2, 3]}}),
            &["DistributionList.Items".into()],
        );
        remove(&mut all, "DistributionList.NextMarker");
        assert_eq!(all, json!({"DistributionList": {"Items": [1, 2, 3]}}));
        // More than one result key (s3 ListObjectVersions): each list is joined, a list first
        // seen on a later page too.
        let keys = ["Versions".to_string(), "DeleteMarkers".to_string()];
        let mut all = json!({"Versions": [1], "Name": "b"});
        join(
            &mut all,
            json!({"Versions": [2], "DeleteMarkers": [9], "Name": "b"}),
            &keys,
        );
        join(&mut all, json!({"DeleteMarkers": [10]}), &keys);
        assert_eq!(all, json!({"Versions": [1, 2], "DeleteMarkers": [9, 10], "Name": "b"}));
    }
}
