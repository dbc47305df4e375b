//! Logs pages: groups, a group's streams, reading a stream (paged both ways, time range,
//! permalinks), searching a group with the filter-pattern language, and live tail (a page plus
//! the JSON endpoint its script polls).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lookout_filter::FilterPattern;
use lookout_logs::{event_id, FilterEvents, GetEvents, GroupNameFilter, LogsError};
use lookout_logstore::{StoredEvent, StreamSelection};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use super::timefmt::{parse_bound, time};
use super::{blocking, check, error_page, human_bytes, json, page, url, Section};
use crate::app::App;
use crate::auth::{Action, Principal};
use crate::time_util::now_ms;
use axum::Extension;

/// Events per page of a stream or a search.
const PAGE_EVENTS: usize = 100;
/// Most events one tail poll returns.
const TAIL_EVENTS: usize = 500;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogsQuery {
    group: String,
    stream: String,
    prefix: String,
    pattern: String,
    start: String,
    end: String,
    token: String,
    /// Permalink: the page that starts at this timestamp.
    at: Option<i64>,
    /// The browser's offset from UTC in minutes (east positive), for local date-times.
    tzo: i32,
    /// Tail: events at or after this time (ms).
    since: Option<i64>,
    /// Streams: `name` sorts by name; otherwise by last event, newest first.
    sort: String,
}

impl LogsQuery {
    fn range(&self, now: i64) -> Result<(Option<i64>, Option<i64>), String> {
        let start = parse_bound(&self.start, now, self.tzo)?;
        let end = parse_bound(&self.end, now, self.tzo)?;
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                return Err("the start of the range is after its end".into());
            }
        }
        Ok((start, end))
    }
}

fn logs_error(e: &LogsError) -> (StatusCode, String) {
    match e {
        LogsError::ResourceNotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
        LogsError::InvalidParameter(m) => (StatusCode::BAD_REQUEST, m.clone()),
        other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// `GET /console/logs?prefix=`: the log groups.
pub async fn groups(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<LogsQuery>,
) -> Response {
    let logs = app.logs.clone();
    let prefix = q.prefix.clone();
    let token = q.token.clone();
    let listed = blocking(move || {
        let filter = if prefix.is_empty() { GroupNameFilter::None } else { GroupNameFilter::Prefix(&prefix) };
        logs.describe_groups(filter, None, 200, (!token.is_empty()).then_some(token.as_str()))
    })
    .await;
    let (mut groups, next) = match listed {
        Ok(v) => v,
        Err(e) => return error_page(logs_error(&e).0, Section::Logs, "Log groups", &e.to_string()),
    };
    // Only the groups this reader may open.
    groups.retain(|g| principal.allows(&Action::logs("DescribeLogStreams", &g.name)));
    page(
        StatusCode::OK,
        "Log groups",
        Section::Logs,
        html! {
            h1 { "Log groups" }
            form #group-filter .bar method="get" action="/console/logs" {
                input type="search" name="prefix" value=(q.prefix) placeholder="Group name prefix" autofocus;
                button type="submit" { "Filter" }
            }
            @if groups.is_empty() {
                p.empty { "No log groups" (if q.prefix.is_empty() { String::new() } else { format!(" start with {:?}", q.prefix) }) "." }
            } @else {
                table #groups {
                    thead { tr { th { "Group" } th { "Retention" } th.num { "Stored" } th { "Created" } } }
                    tbody {
                        @for g in &groups {
                            tr {
                                td { a.group-link href=(url("/console/logs/group", &[("group", &g.name)])) { (g.name) } }
                                td { (g.retention_days.map_or("never expire".to_owned(), |d| format!("{d} days"))) }
                                td.num { (human_bytes(g.stored_bytes)) }
                                td { (time(g.creation_time)) }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    a #next-groups href=(url("/console/logs", &[("prefix", &q.prefix), ("token", &next)])) { "More groups →" }
                }
            }
        },
    )
}

/// The search form of a group (on the group page and the search page).
fn search_form(q: &LogsQuery) -> Markup {
    html! {
        form #search .bar method="get" action="/console/logs/search" {
            input type="hidden" name="group" value=(q.group);
            @if !q.stream.is_empty() { input type="hidden" name="stream" value=(q.stream); }
            input.pattern type="search" name="pattern" value=(q.pattern)
                placeholder="Filter pattern: ERROR, \"exact phrase\", { $.level = \"error\" }, [ip, user, status=5*]";
            (range_inputs(q))
            button type="submit" { "Search" }
        }
    }
}

/// Start/end inputs with quick ranges; `tzo` is filled by the script with the browser's offset.
fn range_inputs(q: &LogsQuery) -> Markup {
    html! {
        label { "From " input.time name="start" value=(q.start) placeholder="15m, 2026-11-23T10:00" list="ranges"; }
        label { "to " input.time name="end" value=(q.end) placeholder="now"; }
        input type="hidden" name="tzo" value=(q.tzo) data-tzo;
        datalist #ranges { option value="15m"; option value="1h"; option value="24h"; option value="7d"; }
    }
}

/// `GET /console/logs/group?group=&prefix=`: a group's streams, newest activity first.
pub async fn group(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<LogsQuery>,
) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Logs, Action::logs("DescribeLogStreams", &q.group)) {
        return denied;
    }
    let logs = app.logs.clone();
    let name = q.group.clone();
    let found = blocking(move || -> Result<_, LogsError> {
        let info = logs.group(&name)?;
        let streams = logs.store().streams(&name).map_err(LogsError::from)?;
        Ok((info, streams))
    })
    .await;
    let (info, mut streams) = match found {
        Ok(v) => v,
        Err(e) => return error_page(logs_error(&e).0, Section::Logs, &q.group, &e.to_string()),
    };
    streams.retain(|s| s.name.starts_with(&q.prefix));
    let by_name = q.sort == "name";
    if !by_name {
        streams.sort_by_key(|s| std::cmp::Reverse((s.last_event_timestamp.unwrap_or(i64::MIN), s.creation_time)));
    }
    let total = streams.len();
    streams.truncate(500);
    page(
        StatusCode::OK,
        &q.group,
        Section::Logs,
        html! {
            p.crumbs { a href="/console/logs" { "Log groups" } " / " }
            h1 { (info.name) }
            p.meta {
                (total) " streams · " (human_bytes(info.stored_bytes)) " stored · retention "
                (info.retention_days.map_or("never expires".to_owned(), |d| format!("{d} days")))
                " · " a #tail-link href=(url("/console/logs/tail", &[("group", &q.group)])) { "Live tail ▶" }
            }
            (search_form(&q))
            form #stream-filter .bar method="get" action="/console/logs/group" {
                input type="hidden" name="group" value=(q.group);
                input type="search" name="prefix" value=(q.prefix) placeholder="Stream name prefix";
                @if by_name { input type="hidden" name="sort" value="name"; }
                button type="submit" { "Filter streams" }
            }
            @if streams.is_empty() {
                p.empty { "No streams." }
            } @else {
                table #streams {
                    thead { tr {
                        th { @if by_name { "Stream ▲" } @else { a #sort-name href=(url("/console/logs/group", &[("group", &q.group), ("prefix", &q.prefix), ("sort", "name")])) { "Stream" } } }
                        th { @if by_name { a #sort-last href=(url("/console/logs/group", &[("group", &q.group), ("prefix", &q.prefix)])) { "Last event" } } @else { "Last event ▼" } }
                        th { "First event" }
                    } }
                    tbody {
                        @for s in &streams {
                            tr {
                                td { a.stream-link href=(url("/console/logs/stream", &[("group", &q.group), ("stream", &s.name)])) { (s.name) } }
                                td { @if let Some(t) = s.last_event_timestamp { (time(t)) } @else { "—" } }
                                td { @if let Some(t) = s.first_event_timestamp { (time(t)) } @else { "—" } }
                            }
                        }
                    }
                }
                @if total > streams.len() { p.more { "Showing the " (streams.len()) " most recent of " (total) " streams; filter by prefix to see others." } }
            }
        },
    )
}

/// `Log groups / group / [stream /]` above a page about a group.
fn crumbs(group: &str, stream: Option<&str>) -> Markup {
    html! {
        p.crumbs {
            a href="/console/logs" { "Log groups" } " / "
            a href=(url("/console/logs/group", &[("group", group)])) { (group) } " / "
            @if let Some(s) = stream {
                a href=(url("/console/logs/stream", &[("group", group), ("stream", s)])) { (s) } " / "
            }
        }
    }
}

/// One event, as on the stream, search, task and tail pages.
pub(super) fn event_row(group: &str, e: &StoredEvent, show_stream: bool, highlight: &[String]) -> Markup {
    let id = event_id(e.key);
    let stream: &str = &e.stream_name;
    let permalink = format!(
        "{}#e-{id}",
        url("/console/logs/stream", &[("group", group), ("stream", stream), ("at", &e.key.timestamp.to_string())])
    );
    let pretty = pretty_json(&e.message);
    html! {
        div.event id=(format!("e-{id}")) data-ts=(e.key.timestamp) {
            a.permalink href=(permalink) title="Permalink to this event" { "#" }
            span.ts { (time(e.key.timestamp)) }
            @if show_stream {
                a.stream href=(url("/console/logs/stream", &[("group", group), ("stream", stream)])) { (stream) }
            }
            span.msg { (highlighted(&e.message, highlight)) }
            @if let Some(p) = pretty {
                details.json { summary { "JSON" } pre { (p) } }
            }
        }
    }
}

/// The message pretty-printed when it is a JSON object or array.
fn pretty_json(message: &str) -> Option<String> {
    let t = message.trim();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(t).ok()?;
    serde_json::to_string_pretty(&v).ok()
}

/// The message with every occurrence of the terms wrapped in `<mark>` (escaped like the rest).
fn highlighted(message: &str, terms: &[String]) -> Markup {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for t in terms.iter().filter(|t| !t.is_empty()) {
        ranges.extend(message.match_indices(t.as_str()).map(|(i, m)| (i, i + m.len())));
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut segments: Vec<(&str, bool)> = Vec::with_capacity(merged.len() * 2 + 1);
    let mut pos = 0;
    for (s, e) in merged {
        segments.push((&message[pos..s], false));
        segments.push((&message[s..e], true));
        pos = e;
    }
    segments.push((&message[pos..], false));
    html! {
        @for (text, marked) in segments {
            @if marked { mark { (text) } } @else { (text) }
        }
    }
}

/// `GET /console/logs/stream?group=&stream=[&start=&end=][&token=][&at=]`: a page of a stream,
/// the newest of the range unless a token or a permalink time says otherwise.
pub async fn stream(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<LogsQuery>,
) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Logs, Action::logs("GetLogEvents", &q.group)) {
        return denied;
    }
    let now = now_ms();
    let (start, end) = match q.range(now) {
        Ok(r) => r,
        Err(e) => return stream_page(&q, StatusCode::BAD_REQUEST, Some(&e), None),
    };
    let logs = app.logs.clone();
    let (group, stream, token, at) = (q.group.clone(), q.stream.clone(), q.token.clone(), q.at);
    let got = blocking(move || {
        let read = |token: Option<&str>, limit: usize| {
            logs.get_events(GetEvents {
                group: &group,
                stream: &stream,
                start_time: at.or(start),
                end_time: end.map(|e| e.saturating_add(1)),
                limit: Some(limit),
                start_from_head: at.is_some(),
                next_token: token,
            })
        };
        let page = read((!token.is_empty()).then_some(token.as_str()), PAGE_EVENTS)?;
        // Whether anything is older: one event through the page's backward token (cheap), so the
        // last page back has no "older" link leading to an empty page.
        let older = !page.events.is_empty() && !read(Some(&page.next_backward_token), 1)?.events.is_empty();
        Ok::<_, LogsError>((page, older))
    })
    .await;
    match got {
        Ok((p, older)) => stream_page(&q, StatusCode::OK, None, Some((p, older))),
        Err(e) => {
            let (status, message) = logs_error(&e);
            stream_page(&q, status, Some(&message), None)
        }
    }
}

fn stream_page(
    q: &LogsQuery,
    status: StatusCode,
    error: Option<&str>,
    p: Option<(lookout_logs::GetEventsPage, bool)>,
) -> Response {
    let link = |token: &str| {
        url(
            "/console/logs/stream",
            &[
                ("group", &q.group),
                ("stream", &q.stream),
                ("start", &q.start),
                ("end", &q.end),
                ("tzo", &q.tzo.to_string()),
                ("token", token),
            ],
        )
    };
    // The newest page (no token, no permalink) has nothing newer yet (live tail is for that).
    let has_newer = !(q.token.is_empty() && q.at.is_none());
    let latest = url("/console/logs/stream", &[("group", &q.group), ("stream", &q.stream)]);
    page(
        status,
        &q.stream,
        Section::Logs,
        html! {
            (crumbs(&q.group, None))
            h1 { (q.stream) }
            form #range .bar method="get" action="/console/logs/stream" {
                input type="hidden" name="group" value=(q.group);
                input type="hidden" name="stream" value=(q.stream);
                (range_inputs(q))
                button type="submit" { "Show" }
                a href=(latest) { "Latest" }
                a #tail-link href=(url("/console/logs/tail", &[("group", &q.group), ("stream", &q.stream)])) { "Live tail ▶" }
            }
            @if let Some(e) = error { p.error #range-error { (e) } }
            @if let Some((p, has_older)) = p {
                @if p.events.is_empty() {
                    p.empty #no-events { "No events here. " a href=(latest) { "Go to the latest events" } }
                } @else {
                    @if has_older { a #older .pager href=(link(&p.next_backward_token)) { "↑ Older events" } }
                    div #events .events data-scroll="both" {
                        @for e in &p.events { (event_row(&q.group, e, false, &[])) }
                    }
                    @if has_newer { a #newer .pager href=(link(&p.next_forward_token)) { "↓ Newer events" } }
                }
            }
        },
    )
}

/// `GET /console/logs/search?group=&pattern=[&stream=][&start=&end=][&token=]`.
pub async fn search(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<LogsQuery>,
) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Logs, Action::logs("FilterLogEvents", &q.group)) {
        return denied;
    }
    let now = now_ms();
    let (start, end) = match q.range(now) {
        Ok(r) => r,
        Err(e) => return search_page(&q, StatusCode::BAD_REQUEST, Some(("range-error", e)), None, &[]),
    };
    let highlight = match FilterPattern::parse(&q.pattern) {
        Ok(p) => p.required_terms(),
        Err(e) => {
            return search_page(&q, StatusCode::BAD_REQUEST, Some(("pattern-error", e.to_string())), None, &[]);
        }
    };
    let logs = app.logs.clone();
    let (group, stream, pattern, token) = (q.group.clone(), q.stream.clone(), q.pattern.clone(), q.token.clone());
    let got = blocking(move || {
        logs.filter_events(FilterEvents {
            group: &group,
            streams: if stream.is_empty() { StreamSelection::All } else { StreamSelection::Names(vec![stream]) },
            start_time: start,
            end_time: end,
            pattern: (!pattern.trim().is_empty()).then_some(pattern.as_str()),
            limit: Some(PAGE_EVENTS),
            next_token: (!token.is_empty()).then_some(token.as_str()),
        })
    })
    .await;
    match got {
        Ok(p) => search_page(&q, StatusCode::OK, None, Some(p), &highlight),
        Err(e) => {
            let (status, message) = logs_error(&e);
            search_page(&q, status, Some(("search-error", message)), None, &[])
        }
    }
}

fn search_page(
    q: &LogsQuery,
    status: StatusCode,
    error: Option<(&str, String)>,
    p: Option<lookout_logs::FilterEventsPage>,
    highlight: &[String],
) -> Response {
    page(
        status,
        &format!("Search {}", q.group),
        Section::Logs,
        html! {
            (crumbs(&q.group, None))
            h1 { "Search" @if !q.stream.is_empty() { " " (q.stream) } }
            (search_form(q))
            @if let Some((id, message)) = error { p.error id=(id) { (message) } }
            @if let Some(p) = p {
                @if p.events.is_empty() {
                    p.empty #no-results {
                        "No events match"
                        @if p.next_token.is_some() { " in the part searched so far" }
                        "."
                    }
                } @else {
                    div #events .events data-scroll="down" {
                        @for e in &p.events { (event_row(&q.group, e, true, highlight)) }
                    }
                }
                @if let Some(t) = &p.next_token {
                    a #newer .pager href=(url("/console/logs/search", &[
                        ("group", &q.group), ("stream", &q.stream), ("pattern", &q.pattern),
                        ("start", &q.start), ("end", &q.end), ("tzo", &q.tzo.to_string()), ("token", t),
                    ])) { "↓ More results" }
                }
            }
        },
    )
}

/// `GET /console/logs/tail?group=[&stream=][&pattern=]`: the live tail page (the script polls
/// `/console/api/tail`).
pub async fn tail_page(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<LogsQuery>,
) -> Response {
    if let Some(denied) = check(&app, &principal, Section::Logs, Action::logs("FilterLogEvents", &q.group)) {
        return denied;
    }
    let logs = app.logs.clone();
    let name = q.group.clone();
    if let Err(e) = blocking(move || logs.group(&name)).await {
        return error_page(logs_error(&e).0, Section::Logs, &q.group, &e.to_string());
    }
    let since = now_ms() - 60_000;
    page(
        StatusCode::OK,
        &format!("Tail {}", q.group),
        Section::Logs,
        html! {
            (crumbs(&q.group, Some(q.stream.as_str()).filter(|s| !s.is_empty())))
            h1 { "Live tail" }
            div #tail data-group=(q.group) data-stream=(q.stream) data-since=(since) {
                div.bar {
                    button #tail-pause type="button" { "Pause" }
                    input #tail-filter type="search" value=(q.pattern) placeholder="Filter pattern (Enter to apply)";
                    span #tail-status { "needs JavaScript" }
                    button #tail-clear type="button" { "Clear" }
                }
                noscript {
                    p.error { "Live tail needs JavaScript. "
                        a href=(url("/console/logs/stream", &[("group", &q.group), ("stream", &q.stream)])) { "Read the latest events" } }
                }
                div #tail-lines .events {}
            }
        },
    )
}

/// `GET /console/api/tail?group=&stream=&pattern=&since=`: events at or after `since`, oldest
/// first (at most `TAIL_EVENTS`), as JSON; the script drops ids it already showed.
pub async fn tail_api(
    State(app): State<App>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<LogsQuery>,
) -> Response {
    let action = Action::logs("FilterLogEvents", &q.group);
    if !principal.allows(&action) {
        let message = crate::auth::denied_message(&principal, &app.identity.account_id, &app.identity.region, &action);
        return json(StatusCode::FORBIDDEN, json!({ "error": message }));
    }
    if let Err(e) = FilterPattern::parse(&q.pattern) {
        return json(StatusCode::BAD_REQUEST, json!({ "error": e.to_string() }));
    }
    let since = q.since.unwrap_or_else(|| now_ms() - 60_000);
    let logs = app.logs.clone();
    let (group, stream, pattern) = (q.group.clone(), q.stream.clone(), q.pattern.clone());
    let got = blocking(move || -> Result<Vec<StoredEvent>, LogsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let p = logs.filter_events(FilterEvents {
                group: &group,
                streams: if stream.is_empty() {
                    StreamSelection::All
                } else {
                    StreamSelection::Names(vec![stream.clone()])
                },
                start_time: Some(since),
                end_time: None,
                pattern: (!pattern.trim().is_empty()).then_some(pattern.as_str()),
                limit: Some(TAIL_EVENTS - out.len()),
                next_token: token.as_deref(),
            })?;
            out.extend(p.events);
            match p.next_token {
                Some(t) if out.len() < TAIL_EVENTS => token = Some(t),
                _ => return Ok(out),
            }
        }
    })
    .await;
    match got {
        Ok(events) => json(
            StatusCode::OK,
            json!({
                "events": events.iter().map(|e| json!({
                    "id": event_id(e.key),
                    "ts": e.key.timestamp,
                    "stream": &*e.stream_name,
                    "message": e.message,
                })).collect::<Vec<_>>(),
                "truncated": events.len() >= TAIL_EVENTS,
            }),
        ),
        Err(e) => {
            let (status, message) = logs_error(&e);
            json(status, json!({ "error": message }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_logstore::EventKey;
    use std::sync::Arc;

    fn ev(message: &str) -> StoredEvent {
        StoredEvent {
            stream_name: Arc::from("s<1>"),
            key: EventKey { timestamp: 1_700_000_000_000, seq: 7 },
            ingestion_time: 0,
            message: message.to_owned(),
        }
    }

    #[test]
    fn messages_render_inert() {
        let lossy = String::from_utf8_lossy(b"bad \xff\xfe bytes").into_owned();
        for m in
            ["<script>alert(1)</script>", "\"quoted\" & 'single' <b>bold</b>", "<img src=x onerror=alert(1)>", &lossy]
        {
            let out = event_row("/g<x>", &ev(m), true, &["script".into(), "b".into()]).into_string();
            assert!(!out.contains("<script"), "{out}");
            assert!(!out.contains("<b>"), "{out}");
            assert!(!out.contains("<img"), "{out}");
            assert!(!out.contains("s<1>"), "the stream name is escaped too: {out}");
        }
        let out = event_row("g", &ev(&lossy), false, &[]).into_string();
        assert!(out.contains("bad \u{fffd}\u{fffd} bytes"), "{out}");
    }

    #[test]
    fn highlights_every_occurrence_and_merges_overlaps() {
        let out = highlighted("ERROR: an ERRORS <x>", &["ERROR".into(), "RORS".into()]).into_string();
        assert_eq!(out, "<mark>ERROR</mark>: an <mark>ERRORS</mark> &lt;x&gt;");
        assert_eq!(highlighted("plain", &[]).into_string(), "plain");
    }

    #[test]
    fn json_messages_are_expandable() {
        assert!(pretty_json("{\"a\":1}").unwrap().contains("\"a\": 1"));
        assert!(pretty_json("{not json").is_none());
        assert!(pretty_json("plain").is_none());
        let out = event_row("g", &ev("{\"html\":\"<b>x</b>\"}"), false, &[]).into_string();
        assert!(out.contains("details class=\"json\""), "{out}");
        assert!(!out.contains("<b>"), "{out}");
    }
}
