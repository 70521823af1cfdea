//! The trace recorder: the file it writes is JSON in the Chrome trace-event
//! format, with one named track per thread, holding spans that never overlap
//! across threads and waiting spans.
#![cfg(feature = "std")]

mod common;

use common::spawn_named;
use gilock::{Gil, SpanKind, TraceRecorder};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Just enough JSON to check the trace: a strict parser (it rejects
/// trailing commas, bare words, control characters in strings and trailing
/// text), so that "parses" means what a JSON reader would say.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing text at {}", p.i));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && b" \t\r\n".contains(&self.s[self.i]) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.string()? else {
                        unreachable!()
                    };
                    self.eat(b':')?;
                    let v = self.value()?;
                    if m.insert(k.clone(), v).is_some() {
                        return Err(format!("duplicate key {k}"));
                    }
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("bad object at {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(format!("bad array at {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(_) => self.number(),
            None => Err("unexpected end".into()),
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(format!("bad word at {}", self.i))
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.i < p.s.len() && p.s[p.i].is_ascii_digit() {
                p.i += 1;
            }
            p.i - s
        };
        let int_start = self.i;
        if digits(self) == 0 {
            return Err(format!("bad number at {start}"));
        }
        if self.s[int_start] == b'0' && self.i - int_start > 1 {
            return Err(format!("leading zero at {start}"));
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(format!("bad fraction at {start}"));
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(format!("bad exponent at {start}"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
        text.parse().map(Json::Num).map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<Json, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at {}", self.i));
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return Ok(Json::Str(out)),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.i..self.i + 4])
                                .map_err(|e| e.to_string())?;
                            let n = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            out.push(char::from_u32(n).ok_or("bad \\u")?);
                            self.i += 4;
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    }
                }
                c if c < 0x20 => return Err(format!("control character at {}", self.i)),
                _ => {
                    // Copy the whole UTF-8 sequence.
                    let start = self.i - 1;
                    while self.i < self.s.len() && (self.s[self.i] & 0xC0) == 0x80 {
                        self.i += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..self.i]).unwrap());
                }
            }
        }
    }
}

impl Json {
    fn get(&self, k: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(k),
            _ => None,
        }
    }
    fn str(&self, k: &str) -> Option<&str> {
        match self.get(k) {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        }
    }
    fn num(&self, k: &str) -> Option<f64> {
        match self.get(k) {
            Some(Json::Num(n)) => Some(*n),
            _ => None,
        }
    }
}

#[test]
fn the_json_checker_rejects_what_json_rejects() {
    for bad in [
        "[1,]",
        "{\"a\":1,}",
        "[01]",
        "nul",
        "\"a\nb\"",
        "{} x",
        "[1.]",
        "{a:1}",
    ] {
        assert!(Parser::parse(bad).is_err(), "accepted {bad:?}");
    }
    let ok = Parser::parse(r#"{"a":[1,-2.5e3,"x\"\u00e9",true,null],"b":{}}"#).unwrap();
    assert_eq!(
        ok.get("a")
            .map(|a| matches!(a, Json::Arr(v) if v.len() == 5)),
        Some(true)
    );
}

/// Three named threads compete for a Gil with a short interval, detach now
/// and then, and one waits with a timeout that may run out.
fn contended_run(recorder: &Arc<TraceRecorder>) -> Arc<Gil> {
    let gil = Arc::new(Gil::with_switch_interval(Duration::from_micros(300)));
    gil.set_event_hook(Some(recorder.hook()));
    let start = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (gil, start) = (Arc::clone(&gil), Arc::clone(&start));
            spawn_named(Some(&format!("vm \"{i}\"\u{1}")), move || {
                start.wait();
                let deadline = Instant::now() + Duration::from_millis(80);
                let mut g = gil.acquire();
                let mut n = 0u32;
                while Instant::now() < deadline {
                    n += 1;
                    if g.should_yield() {
                        g.checkpoint();
                    }
                    if n.is_multiple_of(50_000) {
                        g.detach(|| std::thread::sleep(Duration::from_micros(200)));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join();
    }
    gil.set_event_hook(None);
    gil
}

/// The recorder's trace written to a file and read back; checked with a
/// real JSON reader too, where there is one.
fn json_file_checked_by_python(recorder: &TraceRecorder) -> String {
    let path = std::env::temp_dir().join(format!("gilock-trace-{}.json", std::process::id()));
    recorder.write_to_file(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    if let Ok(out) = std::process::Command::new("python3")
        .args(["-c", "import json,sys; json.load(open(sys.argv[1]))"])
        .arg(&path)
        .output()
    {
        assert!(
            out.status.success(),
            "python3 json: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(&path);
    text
}

#[test]
// Not under Miri: it writes a file and runs python3 (which Miri's isolation
// does not allow), and it needs forced switches within 80 ms of real time,
// which Miri's virtual clock and scheduler do not give.
#[cfg(not(miri))]
fn the_trace_file_is_json_with_a_track_per_thread_and_disjoint_holding_spans() {
    common::setup();
    let recorder = TraceRecorder::new();
    let gil = contended_run(&recorder);
    // Under Miri, whose isolation allows neither files nor processes, the
    // same JSON from memory, without the python3 check.
    let text = if cfg!(miri) {
        recorder.to_json()
    } else {
        json_file_checked_by_python(&recorder)
    };
    let doc = Parser::parse(&text).unwrap_or_else(|e| panic!("not JSON: {e}"));

    let Some(Json::Arr(events)) = doc.get("traceEvents") else {
        panic!("no traceEvents array");
    };
    // Tracks: thread_name metadata per thread, names escaped and restored
    // (a quote and a control character in each).
    let mut names: HashMap<u64, String> = HashMap::new();
    for e in events {
        assert_eq!(e.num("pid"), Some(1.0));
        if e.str("ph") == Some("M") && e.str("name") == Some("thread_name") {
            let tid = e.num("tid").unwrap() as u64;
            let name = e.get("args").and_then(|a| a.str("name")).unwrap();
            names.insert(tid, name.to_string());
        }
    }
    let mut expected: Vec<String> = (0..3).map(|i| format!("vm \"{i}\"\u{1}")).collect();
    let mut got: Vec<String> = names.values().cloned().collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    // Spans: complete events with a thread that has a track.
    let mut holding: Vec<(f64, f64, u64)> = Vec::new();
    let mut waiting = 0;
    let mut forced = 0;
    for e in events.iter().filter(|e| e.str("ph") == Some("X")) {
        let tid = e.num("tid").unwrap() as u64;
        assert!(names.contains_key(&tid), "span on a thread without a track");
        let (ts, dur) = (e.num("ts").unwrap(), e.num("dur").unwrap());
        assert!(ts >= 0.0 && dur >= 0.0);
        match e.str("name") {
            Some("holding") => {
                holding.push((ts, dur, tid));
                let released = e.get("args").and_then(|a| a.str("released")).unwrap();
                assert!(released == "forced" || released == "voluntary");
                forced += usize::from(released == "forced");
            }
            Some("waiting") => waiting += 1,
            other => panic!("unexpected span {other:?}"),
        }
    }
    let tracks_holding: std::collections::HashSet<_> = holding.iter().map(|h| h.2).collect();
    assert_eq!(tracks_holding.len(), 3, "every thread held the Gil");
    assert!(waiting > 0, "no waiting span in a contended run");
    assert!(forced > 0, "no forced switch in 80 ms at a 0.3 ms interval");
    // The Gil is held by one thread at a time: holding spans of different
    // threads do not overlap (timestamps are exact to the nanosecond).
    holding.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in holding.windows(2) {
        let end = w[0].0 + w[0].1;
        assert!(
            end <= w[1].0 + 0.0005,
            "holding spans overlap: {:?} ends at {end} after {:?} began",
            w[0],
            w[1]
        );
    }
    // Every acquisition made a holding span, every wait a waiting one.
    let st = gil.stats();
    assert_eq!(holding.len() as u64, st.acquisitions);
    assert_eq!(waiting as u64, st.waits());
}

#[test]
fn spans_match_the_json() {
    common::setup();
    let recorder = TraceRecorder::new();
    let gil = Gil::new();
    gil.set_event_hook(Some(recorder.hook()));
    let mut g = gil.acquire();
    g.detach(|| ());
    drop(g);
    gil.set_event_hook(None);
    let spans = recorder.spans();
    assert_eq!(spans.len(), 2);
    assert!(
        spans
            .iter()
            .all(|s| s.kind == SpanKind::Holding { forced: false })
    );
    assert!(spans[0].start + spans[0].duration <= spans[1].start);
    let doc = Parser::parse(&recorder.to_json()).unwrap();
    let Some(Json::Arr(events)) = doc.get("traceEvents") else {
        panic!()
    };
    assert_eq!(
        events.iter().filter(|e| e.str("ph") == Some("X")).count(),
        2
    );
    recorder.clear();
    assert!(recorder.spans().is_empty());
}

/// A hook that feeds every event to each of `recorders`.
fn fan_out(recorders: &[&Arc<TraceRecorder>]) -> Arc<gilock::GilHook> {
    let recorders: Vec<Arc<TraceRecorder>> = recorders.iter().map(|r| Arc::clone(r)).collect();
    Arc::new(move |event: &gilock::GilEvent<'_>| {
        for r in &recorders {
            r.record(event);
        }
    })
}

/// The `X` events of a trace, as (ts, dur) in microseconds.
fn complete_events(doc: &Json) -> Vec<(f64, f64)> {
    let Some(Json::Arr(events)) = doc.get("traceEvents") else {
        panic!("no traceEvents array");
    };
    events
        .iter()
        .filter(|e| e.str("ph") == Some("X"))
        .map(|e| (e.num("ts").unwrap(), e.num("dur").unwrap()))
        .collect()
}

/// A full recorder drops its oldest spans: it holds exactly the newest
/// `capacity` of what an unbounded recorder saw, counts the rest, writes
/// only those in the JSON and says how many were dropped in its metadata.
#[test]
fn a_full_recorder_keeps_the_newest_spans_and_counts_the_dropped() {
    common::setup();
    let all = TraceRecorder::new();
    let last3 = TraceRecorder::with_capacity(3);
    assert_eq!(last3.capacity(), 3);
    let gil = Gil::new();
    gil.set_event_hook(Some(fan_out(&[&all, &last3])));
    for _ in 0..7 {
        drop(gil.acquire());
    }
    gil.set_event_hook(None);

    let every = all.spans();
    assert_eq!(every.len(), 7);
    assert_eq!(all.dropped_spans(), 0);
    let kept = last3.spans();
    assert_eq!(kept.len(), 3);
    assert_eq!(last3.dropped_spans(), 4);
    // Same events, so the same spans (times are relative to each recorder's
    // creation, so compare durations and the order of starts).
    let durations = |spans: &[gilock::Span]| spans.iter().map(|s| s.duration).collect::<Vec<_>>();
    assert_eq!(durations(&kept), durations(&every[4..]), "not the newest 3");
    assert!(kept.windows(2).all(|w| w[0].start <= w[1].start));

    let doc = Parser::parse(&last3.to_json()).unwrap();
    let meta = doc.get("otherData").expect("no otherData metadata");
    assert_eq!(meta.num("dropped_spans"), Some(4.0));
    assert_eq!(meta.num("capacity"), Some(3.0));
    let events = complete_events(&doc);
    assert_eq!(events.len(), 3);
    for (event, span) in events.iter().zip(&kept) {
        let ts = span.start.as_nanos() as f64 / 1000.0;
        assert!((event.0 - ts).abs() < 0.0015, "{event:?} is not {span:?}");
    }
    let unbounded = Parser::parse(&all.to_json()).unwrap();
    assert_eq!(
        unbounded
            .get("otherData")
            .and_then(|m| m.num("dropped_spans")),
        Some(0.0)
    );

    // `clear` forgets the spans and the count; recording goes on.
    last3.clear();
    assert!(last3.spans().is_empty());
    assert_eq!(last3.dropped_spans(), 0);
    gil.set_event_hook(Some(last3.hook()));
    drop(gil.acquire());
    gil.set_event_hook(None);
    assert_eq!((last3.spans().len(), last3.dropped_spans()), (1, 0));
}

/// `new()` keeps the documented default; a capacity of 0 keeps nothing and
/// counts every span.
#[test]
fn default_and_zero_capacity() {
    common::setup();
    assert_eq!(
        TraceRecorder::new().capacity(),
        TraceRecorder::DEFAULT_CAPACITY
    );
    let none = TraceRecorder::with_capacity(0);
    let gil = Gil::new();
    gil.set_event_hook(Some(none.hook()));
    for _ in 0..3 {
        drop(gil.acquire());
    }
    gil.set_event_hook(None);
    assert!(none.spans().is_empty());
    assert_eq!(none.dropped_spans(), 3);
    let doc = Parser::parse(&none.to_json()).unwrap();
    assert!(complete_events(&doc).is_empty());
    assert_eq!(
        doc.get("otherData").and_then(|m| m.num("dropped_spans")),
        Some(3.0)
    );
}
