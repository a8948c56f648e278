//! `--format=json`'s records beyond printed output: the unread globals at the
//! end of a session as data (where the text format prints stap's display of
//! them), runtime errors, warnings and lost records.

use crate::engine::store::{Slot, Store};
use crate::engine::value::Value;
use crate::output::json::{Json, record};
use crate::stats::{Histogram, LogHist, Stat};
use rstap_compiler::mir;

/// One `global` record for each global the script writes and never reads, in
/// the order the script first uses them: `value` for a scalar, `entries` (`key` tuple and
/// `value`) for an array, largest value first as stap displays them.
pub fn unread_globals(prog: &mir::Program, store: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    for g in &prog.unread {
        let (Some(global), Some(slot)) = (prog.globals.get(g.index()), store.slots.get(g.index()))
        else {
            continue;
        };
        let name = ("name", Json::str(&global.name));
        let members = match slot {
            Slot::Scalar(v) => vec![name, ("value", value(v))],
            Slot::Stats(s) => vec![name, ("value", stat(s))],
            Slot::Array(a) => {
                let mut entries = a.snapshot();
                entries.sort_by(|(ka, va), (kb, vb)| vb.cmp(va).then_with(|| ka.cmp(kb)));
                let entries = entries.iter().map(|(k, v)| entry(k, value(v))).collect();
                vec![name, ("entries", Json::Arr(entries))]
            }
            Slot::StatsArray(a) => {
                let mut entries = a.snapshot();
                entries.sort_by(|(ka, sa), (kb, sb)| {
                    sb.count().cmp(&sa.count()).then_with(|| ka.cmp(kb))
                });
                let entries = entries.iter().map(|(k, s)| entry(k, stat(s))).collect();
                vec![name, ("entries", Json::Arr(entries))]
            }
        };
        record("global", members).write(&mut out);
        out.push(b'\n');
    }
    out
}

/// A runtime error, with stap's `near` text when there is one.
pub fn error(msg: &str, near: Option<String>) -> Vec<u8> {
    let mut members = vec![("message", Json::str(msg))];
    if let Some(near) = near {
        members.push(("near", Json::str(near)));
    }
    record("error", members).line()
}

/// A histogram a script prints: `{"type":"histogram",` then its buckets as
/// [`histogram`] spells them.
pub fn histogram_record(hist: &Histogram) -> Vec<u8> {
    let Json::Obj(members) = histogram(hist) else {
        return Vec::new();
    };
    record("histogram", members).line()
}

/// A `warn()` message.
pub fn warning(msg: &str) -> Vec<u8> {
    record("warning", vec![("message", Json::str(msg))]).line()
}

/// What was lost: print `records` the BPF ring had no room for, or
/// tracefs `events` its ring buffer dropped.
pub fn lost(what: &str, count: i64) -> Vec<u8> {
    record(
        "lost",
        vec![("what", Json::str(what)), ("count", Json::Num(count))],
    )
    .line()
}

fn value(v: &Value) -> Json {
    match v {
        Value::Long(n) => Json::Num(*n),
        Value::Str(s) => Json::str(s),
    }
}

fn entry(keys: &[Value], v: Json) -> Json {
    Json::Obj(vec![
        ("key", Json::Arr(keys.iter().map(value).collect())),
        ("value", v),
    ])
}

/// An aggregate: count, sum, min, max and avg (min, max and avg are null
/// while it is empty).
fn stat(s: &Stat) -> Json {
    let or_null = |r: Result<i64, _>| r.map_or(Json::Null, Json::Num);
    Json::Obj(vec![
        ("count", Json::Num(s.count())),
        ("sum", Json::Num(s.sum())),
        ("min", or_null(s.min())),
        ("max", or_null(s.max())),
        ("avg", or_null(s.avg())),
    ])
}

/// `{"kind":"log","buckets":[{"value":V,"count":N}...]}`, non-empty buckets
/// only, where `value` is the bucket's row label in stap's display; a linear
/// histogram also gives its `start` and `interval`, and its `underflow` and
/// `overflow` counts.
fn histogram(hist: &Histogram) -> Json {
    let bucket = |v: i64, n: i64| Json::Obj(vec![("value", Json::Num(v)), ("count", Json::Num(n))]);
    match hist {
        Histogram::Log(h) => {
            let buckets = h
                .counts()
                .iter()
                .enumerate()
                .filter(|&(_, &n)| n != 0)
                .map(|(i, &n)| bucket(LogHist::bucket_value(i), n))
                .collect();
            Json::Obj(vec![
                ("kind", Json::str("log")),
                ("buckets", Json::Arr(buckets)),
            ])
        }
        Histogram::Linear(h) => {
            let counts = h.counts();
            let last = counts.len().saturating_sub(1);
            let regular = counts.get(1..last).unwrap_or_default();
            let buckets = regular
                .iter()
                .enumerate()
                .filter(|&(_, &n)| n != 0)
                .map(|(i, &n)| {
                    let i = i64::try_from(i).unwrap_or(i64::MAX);
                    bucket(h.start().saturating_add(i.saturating_mul(h.interval())), n)
                })
                .collect();
            Json::Obj(vec![
                ("kind", Json::str("linear")),
                ("start", Json::Num(h.start())),
                ("interval", Json::Num(h.interval())),
                ("underflow", Json::Num(counts.first().copied().unwrap_or(0))),
                ("buckets", Json::Arr(buckets)),
                (
                    "overflow",
                    Json::Num(if last > 0 { counts[last] } else { 0 }),
                ),
            ])
        }
    }
}
