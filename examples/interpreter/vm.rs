//! A small stack VM, its built-in programs, its `threading` module, and the
//! interpreter state that all VM threads share under the Gil.
//!
//! No `unsafe`: the shared state is a `gilock::GilCell`, reached only
//! through the thread's `GilGuard`, and the `threading` module's blocking
//! calls are gilock's `_with` forms, which let go of the Gil while they
//! wait (so the thread holding the lock can run to release it) and can be
//! interrupted (`KeyboardInterrupt`).

use gilock::{Condition, Event, Gil, GilCell, GilGuard, Interrupted, Lock, RLock, Semaphore};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// One instruction. Operands are inline, as in CPython's wordcode.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Push(i64),
    LoadLocal(usize),
    StoreLocal(usize),
    LoadGlobal(usize),
    StoreGlobal(usize),
    /// Pops v; `global += v` in one instruction (a plain read-modify-write,
    /// atomic only because the Gil is held for the whole instruction).
    AddGlobal(usize),
    Add,
    Sub,
    /// Pops b, a; pushes 1 if a < b else 0.
    Lt,
    JumpIfFalse(usize),
    Jump(usize),
    /// Takes / drops a reference to a shared object, as CPython does on every
    /// load of an object: a plain read-modify-write of its refcount.
    IncRef(usize),
    DecRef(usize),
    /// Blocking I/O on the thread's socket, with the Gil released (detach);
    /// pushes the number of bytes received.
    CallIo,
    // The `threading` module. Each blocking call releases the Gil only if
    // it must wait, and raises KeyboardInterrupt when interrupted.
    /// `threading.Lock().acquire()` on lock `i`.
    LockAcquire(usize),
    /// `lock.release()`.
    LockRelease(usize),
    /// `threading.RLock().acquire()` (re-entrant).
    RLockAcquire(usize),
    RLockRelease(usize),
    /// `cond.wait()` on condition `c`, whose lock is RLock `r`.
    CondWait(usize, usize),
    /// `cond.notify()` (the caller must own RLock `r`).
    CondNotify(usize, usize),
    /// `threading.Semaphore().acquire()` / `release()`.
    SemAcquire(usize),
    SemRelease(usize),
    /// `threading.Event().wait()` / `set()`.
    EventWait(usize),
    EventSet(usize),
    Halt,
}

// Globals of the shared interpreter state.
pub const G_COUNTER: usize = 0; // iterations of the CPU loop, all threads
pub const G_TOTAL: usize = 1; // sum of the loop indices, all threads
pub const G_IO_BYTES: usize = 2; // bytes received by all I/O threads
pub const G_RACY: usize = 3; // `racy = racy + 1` over three instructions
pub const G_LOCKED: usize = 4; // `with lock: locked = locked + 1`
pub const G_RLOCKED: usize = 5; // the same under an RLock taken twice
pub const G_QUEUED: usize = 6; // items in the producer/consumer queue
pub const G_PRODUCED: usize = 7;
pub const G_CONSUMED: usize = 8;
pub const GLOBAL_NAMES: [&str; 9] = [
    "counter", "total", "io_bytes", "racy", "locked", "rlocked", "queued", "produced", "consumed",
];

// The `threading` objects of the interpreter.
pub const LOCK_COUNTER: usize = 0; // guards `locked`
pub const LOCK_BLOCKER: usize = 1; // held outside the VM by the interrupt scenario
pub const RLOCK_COUNTER: usize = 0; // guards `rlocked`
pub const RLOCK_QUEUE: usize = 1; // the queue's mutex
pub const COND_NOT_EMPTY: usize = 0; // over RLOCK_QUEUE
pub const SEM_SLOTS: usize = 0; // free places in the queue
pub const EVENT_START: usize = 0; // set by the producer once it runs
pub const QUEUE_CAPACITY: usize = 4;

// Shared objects (think: a module-level list and a socket object).
pub const OBJ_LIST: usize = 0;
pub const OBJ_SOCKET: usize = 1;
pub const OBJECT_NAMES: [&str; 2] = ["list", "socket"];

/// Loop iterations per run of the CPU program. A thread checks the stop flag
/// between runs, so every run completes and the accounting is exact.
pub const CPU_BATCH: i64 = 1000;
/// Round trips per run of the I/O program.
pub const IO_BATCH: i64 = 5;
/// Items per run of the producer and of the consumer program.
pub const QUEUE_BATCH: i64 = 100;
/// Bytes the echo device sends back per request.
pub const REPLY_LEN: usize = 8;

/// A tiny assembler: forward jumps are emitted with a placeholder and patched
/// when their label is placed.
struct Asm {
    code: Vec<Op>,
}

impl Asm {
    fn new() -> Self {
        Asm { code: Vec::new() }
    }
    fn op(&mut self, op: Op) -> &mut Self {
        self.code.push(op);
        self
    }
    fn here(&self) -> usize {
        self.code.len()
    }
    /// Emits `JumpIfFalse` to a label placed later; returns the patch site.
    fn jump_if_false_forward(&mut self) -> usize {
        self.code.push(Op::JumpIfFalse(usize::MAX));
        self.code.len() - 1
    }
    /// Emits `Jump` to a label placed later; returns the patch site.
    fn jump_forward(&mut self) -> usize {
        self.code.push(Op::Jump(usize::MAX));
        self.code.len() - 1
    }
    fn patch_here(&mut self, site: usize) {
        let target = self.here();
        match &mut self.code[site] {
            Op::JumpIfFalse(t) | Op::Jump(t) => *t = target,
            op => unreachable!("patching {op:?}"),
        }
    }
}

/// `for i in range(n): body` with `i` in local 0. The body may use local 0.
fn counted_loop(asm: &mut Asm, n: i64, body: impl FnOnce(&mut Asm)) {
    asm.op(Op::Push(0)).op(Op::StoreLocal(0));
    let top = asm.here();
    asm.op(Op::LoadLocal(0)).op(Op::Push(n)).op(Op::Lt);
    let exit = asm.jump_if_false_forward();
    body(asm);
    asm.op(Op::LoadLocal(0))
        .op(Op::Push(1))
        .op(Op::Add)
        .op(Op::StoreLocal(0))
        .op(Op::Jump(top));
    asm.patch_here(exit);
    asm.op(Op::Halt);
}

/// The CPU-bound program:
/// ```text
/// for i in range(CPU_BATCH):
///     lst = shared_list    # INCREF
///     counter += 1         # one instruction (ADD_GLOBAL): exact under the Gil
///     total += i           # one instruction (ADD_GLOBAL): exact under the Gil
///     racy = racy + 1      # LOAD_GLOBAL, ADD, STORE_GLOBAL: loses updates
///     del lst              # DECREF
/// with lock:               # threading.Lock: the same three instructions,
///     locked = locked + 1  # exact because the lock is held
/// with rlock:              # threading.RLock, taken twice (re-entrant)
///     with rlock:
///         rlocked = rlocked + 1
/// ```
/// `racy` shows what a Gil does *not* do, in CPython as here: it makes each
/// instruction atomic, not a sequence of them. A switch between its
/// LOAD_GLOBAL and STORE_GLOBAL makes the thread store a stale value later.
/// `locked` is the fix Python programs use, a `threading.Lock`: a switch
/// inside the `with` block makes the other CPU thread block in
/// LOCK_ACQUIRE, which lets go of the Gil so that the holder can run on to
/// its release (holding the Gil there would deadlock the VM).
///
/// The `with` blocks are emitted only when `threading` is asked for
/// (`--threading`): once a switch falls inside one, the two CPU threads
/// can convoy on the lock (the waiter is woken, takes the lock, and then
/// waits for the Gil while the other thread runs on to the lock), as they
/// do in CPython, and the Gil's own switching is then hard to see.
pub fn cpu_program(threading: bool) -> Vec<Op> {
    let mut asm = Asm::new();
    counted_loop(&mut asm, CPU_BATCH, |a| {
        a.op(Op::IncRef(OBJ_LIST))
            .op(Op::Push(1))
            .op(Op::AddGlobal(G_COUNTER))
            .op(Op::LoadLocal(0))
            .op(Op::AddGlobal(G_TOTAL))
            .op(Op::LoadGlobal(G_RACY))
            .op(Op::Push(1))
            .op(Op::Add)
            .op(Op::StoreGlobal(G_RACY))
            .op(Op::DecRef(OBJ_LIST));
    });
    if !threading {
        return asm.code;
    }
    // Once per run, after the loop (the loop ends with HALT: replace it).
    asm.code.pop();
    asm.op(Op::LockAcquire(LOCK_COUNTER))
        .op(Op::LoadGlobal(G_LOCKED))
        .op(Op::Push(1))
        .op(Op::Add)
        .op(Op::StoreGlobal(G_LOCKED))
        .op(Op::LockRelease(LOCK_COUNTER))
        .op(Op::RLockAcquire(RLOCK_COUNTER))
        .op(Op::RLockAcquire(RLOCK_COUNTER))
        .op(Op::LoadGlobal(G_RLOCKED))
        .op(Op::Push(1))
        .op(Op::Add)
        .op(Op::StoreGlobal(G_RLOCKED))
        .op(Op::RLockRelease(RLOCK_COUNTER))
        .op(Op::RLockRelease(RLOCK_COUNTER))
        .op(Op::Halt);
    asm.code
}

/// The producer half of a bounded queue built as Python's `queue.Queue`
/// is (an RLock, a Condition over it, and a Semaphore counting free
/// places):
/// ```text
/// started.set()                    # threading.Event: the consumer waits for it
/// for i in range(QUEUE_BATCH):
///     slots.acquire()               # blocks while the queue is full
///     with mutex:                   # threading.RLock
///         queued += 1; produced += 1
///         not_empty.notify()
/// ```
pub fn producer_program() -> Vec<Op> {
    let mut asm = Asm::new();
    asm.op(Op::EventSet(EVENT_START));
    counted_loop(&mut asm, QUEUE_BATCH, |a| {
        a.op(Op::SemAcquire(SEM_SLOTS))
            .op(Op::RLockAcquire(RLOCK_QUEUE))
            .op(Op::Push(1))
            .op(Op::AddGlobal(G_QUEUED))
            .op(Op::Push(1))
            .op(Op::AddGlobal(G_PRODUCED))
            .op(Op::CondNotify(COND_NOT_EMPTY, RLOCK_QUEUE))
            .op(Op::RLockRelease(RLOCK_QUEUE));
    });
    asm.code
}

/// The consumer half:
/// ```text
/// started.wait()                   # the Gil released until the producer is up
/// for i in range(QUEUE_BATCH):
///     with mutex:
///         while not 0 < queued:
///             not_empty.wait()      # releases every level of the RLock
///         queued -= 1; consumed += 1
///     slots.release()
/// ```
pub fn consumer_program() -> Vec<Op> {
    let mut asm = Asm::new();
    asm.op(Op::EventWait(EVENT_START));
    counted_loop(&mut asm, QUEUE_BATCH, |a| {
        a.op(Op::RLockAcquire(RLOCK_QUEUE));
        let check = a.here();
        a.op(Op::Push(0)).op(Op::LoadGlobal(G_QUEUED)).op(Op::Lt);
        let wait = a.jump_if_false_forward();
        a.op(Op::Push(-1))
            .op(Op::AddGlobal(G_QUEUED))
            .op(Op::Push(1))
            .op(Op::AddGlobal(G_CONSUMED))
            .op(Op::RLockRelease(RLOCK_QUEUE))
            .op(Op::SemRelease(SEM_SLOTS));
        let done = a.jump_forward();
        a.patch_here(wait);
        a.op(Op::CondWait(COND_NOT_EMPTY, RLOCK_QUEUE))
            .op(Op::Jump(check));
        a.patch_here(done);
    });
    asm.code
}

/// The interrupt scenario's "main thread": `blocker.acquire()` on a lock
/// that another thread holds for good; only a KeyboardInterrupt ends it.
pub fn blocked_program() -> Vec<Op> {
    vec![
        Op::LockAcquire(LOCK_BLOCKER),
        Op::LockRelease(LOCK_BLOCKER),
        Op::Halt,
    ]
}

/// The I/O-bound program, a countdown for variety:
/// ```text
/// left = IO_BATCH
/// while 0 < left:
///     s = shared_socket            # INCREF
///     io_bytes += s.recv_reply()   # CALL_IO (Gil released), ADD_GLOBAL
///     del s                        # DECREF
///     left = left - 1
/// ```
pub fn io_program() -> Vec<Op> {
    let mut asm = Asm::new();
    asm.op(Op::Push(IO_BATCH)).op(Op::StoreLocal(0));
    let top = asm.here();
    asm.op(Op::Push(0)).op(Op::LoadLocal(0)).op(Op::Lt);
    let exit = asm.jump_if_false_forward();
    asm.op(Op::IncRef(OBJ_SOCKET))
        .op(Op::CallIo)
        .op(Op::AddGlobal(G_IO_BYTES))
        .op(Op::DecRef(OBJ_SOCKET))
        .op(Op::LoadLocal(0))
        .op(Op::Push(1))
        .op(Op::Sub)
        .op(Op::StoreLocal(0))
        .op(Op::Jump(top));
    asm.patch_here(exit);
    asm.op(Op::Halt);
    asm.code
}

/// What one run of each program adds to the globals: the integrity check
/// compares the globals with (runs done) × this.
pub const CPU_RUN_COUNTER: i64 = CPU_BATCH;
pub const CPU_RUN_TOTAL: i64 = CPU_BATCH * (CPU_BATCH - 1) / 2;
pub const IO_RUN_BYTES: i64 = IO_BATCH * REPLY_LEN as i64;

/// A shared object: only its refcount matters here.
pub struct Object {
    pub refcount: u64,
}

/// Interpreter state that every VM thread reads and writes.
pub struct State {
    pub globals: [i64; GLOBAL_NAMES.len()],
    pub objects: [Object; OBJECT_NAMES.len()],
}

/// The interpreter's `threading` objects (what a Python program would have
/// created at module level).
pub struct Threading {
    pub locks: [Lock; 2],
    pub rlocks: [RLock; 2],
    pub conds: [Condition; 1],
    pub sems: [Semaphore; 1],
    pub events: [Event; 1],
}

/// The interpreter: one Gil, the state it protects, and the `threading`
/// objects, which protect themselves.
///
/// The state is deliberately *not* atomic: refcount and global updates are
/// plain loads and stores, like CPython's `Py_INCREF`. A `GilCell` lets a
/// thread reach it only through its Gil guard, and never across a
/// checkpoint, a detach or a blocking `threading` call (which take the
/// guard by `&mut`): without the Gil two threads would lose updates, and
/// the check at the end would fail.
pub struct Interp {
    pub gil: Gil,
    pub state: GilCell<State>,
    pub threading: Threading,
}

impl Interp {
    pub fn new(gil: Gil) -> Self {
        Interp {
            gil,
            state: GilCell::new(State {
                globals: [0; GLOBAL_NAMES.len()],
                // Each object starts with the one reference its global holds.
                objects: [Object { refcount: 1 }, Object { refcount: 1 }],
            }),
            threading: Threading {
                locks: [Lock::new(), Lock::new()],
                rlocks: [RLock::new(), RLock::new()],
                conds: [Condition::new()],
                sems: [Semaphore::new(QUEUE_CAPACITY)],
                events: [Event::new()],
            },
        }
    }

    /// The state after every VM thread has finished.
    pub fn into_state(self) -> State {
        self.state.into_inner()
    }
}

/// A Python exception that ended a run.
#[derive(Debug)]
pub enum Raised {
    /// `KeyboardInterrupt`: `ThreadState::interrupt` reached the thread,
    /// in a blocking `threading` call or at a checkpoint. `at` is when the
    /// VM saw it, holding the Gil again.
    KeyboardInterrupt { at: Instant, op: Op },
    /// `RuntimeError`: e.g. releasing a lock the thread does not hold.
    RuntimeError(String),
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raised::KeyboardInterrupt { op, .. } => write!(f, "KeyboardInterrupt in {op:?}"),
            Raised::RuntimeError(what) => write!(f, "RuntimeError: {what}"),
        }
    }
}

/// What a VM thread measures about its own Gil waits, on top of the
/// library's `ThreadStats`.
#[derive(Default)]
pub struct Waits {
    /// Each wait to get the Gil back: after a forced switch (CPU threads)
    /// or after blocking I/O returned (I/O threads).
    pub samples: Vec<Duration>,
    /// Checkpoints that switched (the thread gave the Gil up on request).
    pub forced_switches: u64,
}

/// The client end of a loopback "device": one request byte out, a short
/// reply back after the device's latency.
pub struct Device {
    stream: TcpStream,
}

impl Device {
    pub fn new(stream: TcpStream) -> Self {
        Device { stream }
    }
    /// One blocking round trip. Runs with the Gil released.
    fn round_trip(&mut self) -> usize {
        let mut reply = [0u8; REPLY_LEN];
        self.stream.write_all(b"?").expect("echo device: write");
        self.stream
            .read_exact(&mut reply)
            .expect("echo device: read");
        reply.len()
    }
}

/// One VM thread's registers. The operand stack and locals are private to
/// the thread (a frame), the globals and objects are shared.
pub struct Vm<'p> {
    code: &'p [Op],
    stack: Vec<i64>,
    locals: [i64; 4],
    /// Instructions executed, all runs.
    pub ops: u64,
    /// Set while the thread is inside LOCK_ACQUIRE, for the interrupt
    /// scenario (which interrupts it only once it is blocked there).
    pub in_lock_acquire: Option<&'p AtomicBool>,
}

impl<'p> Vm<'p> {
    pub fn new(code: &'p [Op]) -> Self {
        Vm {
            code,
            stack: Vec::with_capacity(16),
            locals: [0; 4],
            ops: 0,
            in_lock_acquire: None,
        }
    }

    fn pop(&mut self) -> i64 {
        self.stack.pop().expect("VM: stack underflow")
    }

    /// Runs the program once, from the first instruction to `Halt`, or
    /// until an exception is raised.
    pub fn run(
        &mut self,
        interp: &Interp,
        guard: &mut GilGuard<'_>,
        mut device: Option<&mut Device>,
        waits: &mut Waits,
    ) -> Result<(), Raised> {
        let threading = &interp.threading;
        let mut pc = 0;
        loop {
            let op = self.code[pc];
            // The eval breaker: one relaxed load per instruction. Only when a
            // drop request (or an interrupt) is pending do we leave the fast
            // path; CPython polls at the same kind of place.
            if guard.should_yield() {
                let asked = Instant::now();
                let cp = guard.checkpoint();
                if cp.switched {
                    // We gave the Gil away and waited to get it back.
                    waits.samples.push(asked.elapsed());
                    waits.forced_switches += 1;
                }
                if cp.interrupted {
                    return Err(Raised::KeyboardInterrupt {
                        at: Instant::now(),
                        op,
                    });
                }
            }
            pc += 1;
            self.ops += 1;
            // A `threading` call that an interrupt ended.
            let interrupted = |Interrupted| Raised::KeyboardInterrupt {
                at: Instant::now(),
                op,
            };
            let runtime_error =
                |e: &dyn std::fmt::Display| Raised::RuntimeError(format!("{op:?}: {e}"));
            match op {
                Op::Push(v) => self.stack.push(v),
                Op::LoadLocal(i) => self.stack.push(self.locals[i]),
                Op::StoreLocal(i) => self.locals[i] = self.pop(),
                Op::LoadGlobal(g) => {
                    let v = interp.state.borrow(guard).globals[g];
                    self.stack.push(v);
                }
                Op::StoreGlobal(g) => {
                    let v = self.pop();
                    interp.state.borrow_mut(guard).globals[g] = v;
                }
                Op::AddGlobal(g) => {
                    let v = self.pop();
                    let mut state = interp.state.borrow_mut(guard);
                    let slot = &mut state.globals[g];
                    *slot = slot.wrapping_add(v);
                }
                Op::Add => {
                    let (b, a) = (self.pop(), self.pop());
                    self.stack.push(a.wrapping_add(b));
                }
                Op::Sub => {
                    let (b, a) = (self.pop(), self.pop());
                    self.stack.push(a.wrapping_sub(b));
                }
                Op::Lt => {
                    let (b, a) = (self.pop(), self.pop());
                    self.stack.push((a < b) as i64);
                }
                Op::JumpIfFalse(t) => {
                    if self.pop() == 0 {
                        pc = t;
                    }
                }
                Op::Jump(t) => pc = t,
                Op::IncRef(o) => {
                    interp.state.borrow_mut(guard).objects[o].refcount += 1;
                }
                Op::DecRef(o) => {
                    let mut state = interp.state.borrow_mut(guard);
                    let obj = &mut state.objects[o];
                    obj.refcount = obj
                        .refcount
                        .checked_sub(1)
                        .expect("refcount underflow: the Gil failed to protect the state");
                }
                Op::CallIo => {
                    let dev = device
                        .as_deref_mut()
                        .expect("CALL_IO on a thread without a device");
                    // Release the Gil around the blocking call, note when the
                    // call itself finished, and time how long taking the Gil
                    // back took: that is the latency a Gil adds to I/O.
                    let mut io_done = None;
                    let n = guard.detach(|| {
                        let n = dev.round_trip();
                        io_done = Some(Instant::now());
                        n
                    });
                    waits
                        .samples
                        .push(io_done.expect("detach ran the closure").elapsed());
                    self.stack.push(n as i64);
                }
                Op::LockAcquire(l) => {
                    if let Some(flag) = self.in_lock_acquire {
                        flag.store(true, Relaxed);
                    }
                    let result = threading.locks[l].acquire_with(guard);
                    if let Some(flag) = self.in_lock_acquire {
                        flag.store(false, Relaxed);
                    }
                    result.map_err(interrupted)?;
                }
                Op::LockRelease(l) => {
                    threading.locks[l]
                        .release()
                        .map_err(|e| runtime_error(&e))?;
                }
                Op::RLockAcquire(r) => {
                    threading.rlocks[r]
                        .acquire_with(guard)
                        .map_err(interrupted)?;
                }
                Op::RLockRelease(r) => {
                    threading.rlocks[r]
                        .release()
                        .map_err(|e| runtime_error(&e))?;
                }
                Op::CondWait(c, r) => match threading.conds[c]
                    .wait_on_rlock_with(&threading.rlocks[r], guard)
                {
                    Ok(()) => {}
                    Err(gilock::WaitError::Interrupted) => return Err(interrupted(Interrupted)),
                    Err(e) => return Err(runtime_error(&e)),
                },
                Op::CondNotify(c, r) => {
                    threading.conds[c]
                        .notify_on_rlock(&threading.rlocks[r], 1)
                        .map_err(|e| runtime_error(&e))?;
                }
                Op::SemAcquire(s) => {
                    threading.sems[s].acquire_with(guard).map_err(interrupted)?;
                }
                Op::SemRelease(s) => threading.sems[s].release(1),
                Op::EventWait(e) => {
                    threading.events[e].wait_with(guard).map_err(interrupted)?;
                }
                Op::EventSet(e) => threading.events[e].set(),
                Op::Halt => {
                    debug_assert!(self.stack.is_empty(), "VM: stack not empty at HALT");
                    return Ok(());
                }
            }
        }
    }
}

/// Serves one device connection: for each request byte, sleep `latency`,
/// then reply. Runs on its own thread, outside the Gil (it is the "kernel").
pub fn serve_device(mut stream: TcpStream, latency: Duration) {
    let mut req = [0u8; 1];
    let reply = [b'!'; REPLY_LEN];
    // EOF (the VM thread dropped its end) or any error ends the device.
    while let Ok(1) = stream.read(&mut req) {
        std::thread::sleep(latency);
        if stream.write_all(&reply).is_err() {
            break;
        }
    }
}
