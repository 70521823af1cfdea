//! A small stack VM, its built-in programs, and the interpreter state that
//! all VM threads share under the Gil.

use gilock::{Gil, GilGuard};
use std::cell::UnsafeCell;
use std::io::{Read, Write};
use std::net::TcpStream;
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
    Halt,
}

// Globals of the shared interpreter state.
pub const G_COUNTER: usize = 0; // iterations of the CPU loop, all threads
pub const G_TOTAL: usize = 1; // sum of the loop indices, all threads
pub const G_IO_BYTES: usize = 2; // bytes received by all I/O threads
pub const G_RACY: usize = 3; // `racy = racy + 1` over three instructions
pub const GLOBAL_NAMES: [&str; 4] = ["counter", "total", "io_bytes", "racy"];

// Shared objects (think: a module-level list and a socket object).
pub const OBJ_LIST: usize = 0;
pub const OBJ_SOCKET: usize = 1;
pub const OBJECT_NAMES: [&str; 2] = ["list", "socket"];

/// Loop iterations per run of the CPU program. A thread checks the stop flag
/// between runs, so every run completes and the accounting is exact.
pub const CPU_BATCH: i64 = 1000;
/// Round trips per run of the I/O program.
pub const IO_BATCH: i64 = 5;
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
/// ```
/// `racy` shows what a Gil does *not* do, in CPython as here: it makes each
/// instruction atomic, not a sequence of them. A switch between its
/// LOAD_GLOBAL and STORE_GLOBAL makes the thread store a stale value later.
pub fn cpu_program() -> Vec<Op> {
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
    asm.code
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

/// The interpreter: one Gil and the state it protects.
///
/// The state is deliberately *not* atomic: refcount and global updates are
/// plain loads and stores, like CPython's `Py_INCREF`. Without the Gil two
/// threads would lose updates, and the check at the end would fail.
pub struct Interp {
    pub gil: Gil,
    state: UnsafeCell<State>,
}

// SAFETY: `state` is only reached through `Interp::state`, which requires the
// calling thread to hold `self.gil` (asserted) and a `&mut GilGuard` for the
// borrow's whole life. The Gil has one holder at a time, the guard is !Send,
// and this program never nests guards (no `Gil::ensure`), so at most one
// `&mut State` exists at any time.
unsafe impl Sync for Interp {}

impl Interp {
    pub fn new(gil: Gil) -> Self {
        Interp {
            gil,
            state: UnsafeCell::new(State {
                globals: [0; GLOBAL_NAMES.len()],
                // Each object starts with the one reference its global holds.
                objects: [Object { refcount: 1 }, Object { refcount: 1 }],
            }),
        }
    }

    /// The shared state, for as long as the caller's Gil guard stays borrowed
    /// (so it cannot be used across a checkpoint or detach, where the Gil is
    /// released).
    #[inline]
    pub fn state<'a>(&'a self, _held: &'a mut GilGuard<'_>) -> &'a mut State {
        assert!(
            self.gil.is_held_by_current_thread(),
            "interpreter state touched without holding this interpreter's Gil"
        );
        // SAFETY: see `unsafe impl Sync for Interp`.
        unsafe { &mut *self.state.get() }
    }

    /// The state after every VM thread has finished.
    pub fn into_state(self) -> State {
        self.state.into_inner()
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
}

impl<'p> Vm<'p> {
    pub fn new(code: &'p [Op]) -> Self {
        Vm {
            code,
            stack: Vec::with_capacity(16),
            locals: [0; 4],
            ops: 0,
        }
    }

    fn pop(&mut self) -> i64 {
        self.stack.pop().expect("VM: stack underflow")
    }

    /// Runs the program once, from the first instruction to `Halt`.
    pub fn run(
        &mut self,
        interp: &Interp,
        guard: &mut GilGuard<'_>,
        mut device: Option<&mut Device>,
        waits: &mut Waits,
    ) {
        let mut pc = 0;
        loop {
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
            }
            let op = self.code[pc];
            pc += 1;
            self.ops += 1;
            match op {
                Op::Push(v) => self.stack.push(v),
                Op::LoadLocal(i) => self.stack.push(self.locals[i]),
                Op::StoreLocal(i) => self.locals[i] = self.pop(),
                Op::LoadGlobal(g) => {
                    let v = interp.state(guard).globals[g];
                    self.stack.push(v);
                }
                Op::StoreGlobal(g) => {
                    let v = self.pop();
                    interp.state(guard).globals[g] = v;
                }
                Op::AddGlobal(g) => {
                    let v = self.pop();
                    let slot = &mut interp.state(guard).globals[g];
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
                    let obj = &mut interp.state(guard).objects[o];
                    obj.refcount += 1;
                }
                Op::DecRef(o) => {
                    let obj = &mut interp.state(guard).objects[o];
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
                Op::Halt => {
                    debug_assert!(self.stack.is_empty(), "VM: stack not empty at HALT");
                    return;
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
