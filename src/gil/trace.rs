//! A timeline of a Gil: an event hook that records holding and waiting spans
//! and writes them in the Chrome trace-event format, which Perfetto
//! (<https://ui.perfetto.dev>) and `chrome://tracing` open.

use super::hooks::{GilEvent, GilEventKind, GilHook};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;
use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a recorded span stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanKind {
    /// The thread held the Gil (`Resumed` → `Suspended`).
    Holding {
        /// The span ended with a forced switch.
        forced: bool,
    },
    /// The thread waited and got the Gil (`Ready` → `Resumed`).
    Waiting,
    /// The thread waited and gave up (`Ready` → `GaveUp`: a timeout or an
    /// interrupt).
    GaveUp,
}

/// One span of a thread's timeline, times since the recorder's creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Span {
    /// The thread's [`ident`](crate::ThreadState::ident).
    pub thread: u64,
    /// What the thread was doing.
    pub kind: SpanKind,
    /// When it began.
    pub start: Duration,
    /// How long it lasted.
    pub duration: Duration,
}

#[derive(Default)]
struct Track {
    name: Option<String>,
    /// The open holding or waiting span, and when it began.
    open: Option<(Open, Instant)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Holding,
    Waiting,
}

#[derive(Default)]
struct Inner {
    tracks: HashMap<u64, Track>,
    /// The newest spans, oldest first; at most `capacity` of them.
    spans: VecDeque<Span>,
    /// Spans dropped to make room since creation or the last `clear`.
    dropped: u64,
}

/// Records a Gil's timeline through its event hook and writes it as Chrome
/// trace-event JSON: one track per thread (named after the thread), a
/// "holding" span for each time it held the Gil and a "waiting" span for
/// each wait.
///
/// The recorder is a ring buffer: it keeps the newest `capacity` spans
/// ([`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) with [`new`](Self::new),
/// any number with [`with_capacity`](Self::with_capacity)) and drops the
/// oldest to make room, counting them ([`dropped_spans`](Self::dropped_spans),
/// and `otherData.dropped_spans` in the JSON). So a recorder left on in a
/// long-running interpreter holds the last stretch of its timeline in
/// bounded memory: `capacity` × `size_of::<Span>()` (48 bytes on 64-bit
/// targets), plus a few bytes per thread. Recording costs a lock and a push
/// per span; spans still open when the trace is written are left out.
///
/// ```
/// use gilock::{Gil, TraceRecorder};
///
/// let gil = Gil::new();
/// let recorder = TraceRecorder::with_capacity(2);
/// gil.set_event_hook(Some(recorder.hook()));
/// for _ in 0..3 {
///     drop(gil.acquire());
/// }
/// gil.set_event_hook(None);
/// assert_eq!(recorder.spans().len(), 2); // the newest two
/// assert_eq!(recorder.dropped_spans(), 1);
/// let json = recorder.to_json();
/// assert!(json.contains(r#""name":"holding""#));
/// assert!(json.contains(r#""dropped_spans":1"#));
/// // recorder.write_to_file("gil.trace.json")?; then open it in Perfetto.
/// ```
pub struct TraceRecorder {
    origin: Instant,
    capacity: usize,
    inner: Mutex<Inner>,
}

impl TraceRecorder {
    /// The number of spans [`new`](Self::new) keeps: 65 536, about 3 MiB.
    /// Two CPU-bound threads at the default 5 ms interval make about 400
    /// spans a second (minutes of timeline); threads that detach for fast
    /// I/O can make tens of thousands a second (a few seconds).
    pub const DEFAULT_CAPACITY: usize = 1 << 16;

    /// A recorder whose timeline starts now, keeping the newest
    /// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) spans.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A recorder whose timeline starts now, keeping the newest `capacity`
    /// spans and dropping older ones. Memory for them is taken as spans
    /// arrive, not up front. With a capacity of 0 it keeps no span and only
    /// counts them as dropped.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            capacity,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// The most spans this recorder keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many spans were dropped, oldest first, to keep within
    /// [`capacity`](Self::capacity), since the recorder was created or last
    /// [`clear`](Self::clear)ed.
    pub fn dropped_spans(&self) -> u64 {
        self.lock().dropped
    }

    /// The hook to register with [`Gil::set_event_hook`](crate::Gil::set_event_hook).
    /// One recorder may record several Gils (their threads share tracks).
    pub fn hook(self: &Arc<Self>) -> Arc<GilHook> {
        let me = Arc::clone(self);
        Arc::new(move |event: &GilEvent<'_>| me.record(event))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while the lock was held leaves data that is
        // still consistent (each update is a single push or insert).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one event (what the [`hook`](Self::hook) does).
    pub fn record(&self, event: &GilEvent<'_>) {
        let at = event.at;
        let id = event.thread.ident();
        let capacity = self.capacity;
        let mut inner = self.lock();
        let Inner {
            tracks,
            spans,
            dropped,
        } = &mut *inner;
        let track = tracks.entry(id).or_default();
        if track.name.is_none() {
            track.name = event.thread.name().map(String::from);
        }
        let mut close = |kind: SpanKind, want: Open| {
            if let Some((open, since)) = track.open.take()
                && open == want
            {
                if spans.len() >= capacity {
                    // Full (or a capacity of 0): the oldest span goes.
                    *dropped += 1;
                    if spans.pop_front().is_none() {
                        return;
                    }
                }
                spans.push_back(Span {
                    thread: id,
                    kind,
                    start: since.saturating_duration_since(self.origin),
                    duration: at.saturating_duration_since(since),
                });
            }
        };
        match event.kind {
            GilEventKind::Ready => {
                track.open = Some((Open::Waiting, at));
            }
            GilEventKind::Resumed => {
                close(SpanKind::Waiting, Open::Waiting);
                track.open = Some((Open::Holding, at));
            }
            GilEventKind::Suspended { forced } => {
                close(SpanKind::Holding { forced }, Open::Holding)
            }
            GilEventKind::GaveUp => close(SpanKind::GaveUp, Open::Waiting),
            GilEventKind::Exited => track.open = None,
            _ => {}
        }
    }

    /// The spans kept (the newest [`capacity`](Self::capacity)), in the
    /// order they ended.
    pub fn spans(&self) -> Vec<Span> {
        self.lock().spans.iter().copied().collect()
    }

    /// Forgets the spans kept so far and resets
    /// [`dropped_spans`](Self::dropped_spans) (tracks and open spans stay).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.spans.clear();
        inner.dropped = 0;
    }

    /// The trace as Chrome trace-event JSON (the "JSON object format":
    /// `{"traceEvents": [...], "otherData": {...}}`), timestamps in
    /// microseconds. `otherData` (the trace's metadata in Perfetto and
    /// `chrome://tracing`) holds `capacity` and `dropped_spans`: a non-zero
    /// count says that the timeline starts later than the run did.
    pub fn to_json(&self) -> String {
        let inner = self.lock();
        let mut out = String::with_capacity(128 + inner.spans.len() * 110);
        let _ = writeln!(
            out,
            "{{\"displayTimeUnit\":\"ms\",\"otherData\":{{\"capacity\":{},\"dropped_spans\":{}}},\
             \"traceEvents\":[",
            self.capacity, inner.dropped
        );
        out.push_str(
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\
             \"args\":{\"name\":\"Gil\"}}",
        );
        let mut ids: Vec<_> = inner.tracks.keys().copied().collect();
        ids.sort_unstable();
        for id in &ids {
            let name = match &inner.tracks[id].name {
                Some(n) => n.clone(),
                None => alloc::format!("thread {id}"),
            };
            out.push_str(",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":");
            let _ = write!(out, "{id},\"args\":{{\"name\":");
            push_json_string(&mut out, &name);
            out.push_str("}}");
            out.push_str(",\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":");
            let _ = write!(out, "{id},\"args\":{{\"sort_index\":{id}}}}}");
        }
        for s in &inner.spans {
            let (name, args) = match s.kind {
                SpanKind::Holding { forced: true } => ("holding", "{\"released\":\"forced\"}"),
                SpanKind::Holding { forced: false } => ("holding", "{\"released\":\"voluntary\"}"),
                SpanKind::Waiting => ("waiting", "{}"),
                SpanKind::GaveUp => ("waiting (gave up)", "{}"),
            };
            let _ = write!(
                out,
                ",\n{{\"name\":\"{name}\",\"cat\":\"gil\",\"ph\":\"X\",\"pid\":1,\"tid\":{},\
                 \"ts\":{},\"dur\":{},\"args\":{args}}}",
                s.thread,
                Micros(s.start),
                Micros(s.duration),
            );
        }
        out.push_str("\n]}\n");
        out
    }

    /// Writes [`to_json`](Self::to_json) to `w`.
    pub fn write_json(&self, mut w: impl io::Write) -> io::Result<()> {
        w.write_all(self.to_json().as_bytes())
    }

    /// Writes the trace to the file at `path` (created or truncated).
    pub fn write_to_file(&self, path: impl AsRef<std::path::Path>) -> io::Result<()> {
        let file = std::fs::File::create(path)?;
        let mut w = io::BufWriter::new(file);
        self.write_json(&mut w)?;
        io::Write::flush(&mut w)
    }
}

impl core::fmt::Debug for TraceRecorder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let inner = self.lock();
        f.debug_struct("TraceRecorder")
            .field("threads", &inner.tracks.len())
            .field("spans", &inner.spans.len())
            .field("capacity", &self.capacity)
            .field("dropped_spans", &inner.dropped)
            .finish()
    }
}

/// Microseconds with nanosecond precision, as JSON wants a number.
struct Micros(Duration);

impl core::fmt::Display for Micros {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let nanos = self.0.as_nanos();
        write!(f, "{}.{:03}", nanos / 1000, nanos % 1000)
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
