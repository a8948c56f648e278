//! One ftrace event as a handler running in the user-space engine sees it:
//! target variables decoded from the record by the event's format, the task's
//! facts, the event's CPU and time, and user memory.
//!
//! What is exact and what is not: `$field`s, `$argN`, `$return`, strings
//! fetched by the event's fetch arguments, `tid()`, `cpu()` and the clocks
//! come from the record itself (the instance's `trace_clock` is `mono`, the
//! clock `ktime_get_ns()` reads). The record carries only the thread id, so
//! `pid()`, `ppid()`, `uid()` and friends are read from `/proc/TID` when the
//! handler runs, and `execname()` from `/proc/TID/comm` or, for a task that
//! has exited since, the kernel's `saved_cmdlines` — but rstap also enables
//! `task_newtask`, `task_rename` and `sched_process_exec` in its instance and
//! follows them in event order, so every task created or renamed during the
//! run has the name and process it had at each event; for a thread that
//! has exited, `pid()` comes from the kernel's `saved_tgids`, recorded at
//! the event (the instance's `record-tgid` option). User memory that no
//! fetch argument captured is read with `process_vm_readv(2)` when the
//! handler runs.

use crate::engine::value::Value;
use rstap_compiler::backend::tracefs::ArgRole;
use rstap_compiler::builtins::Builtin;
use rstap_compiler::hir::ContextValue;
use rstap_compiler::tracepoint::{Field, FieldKind};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// How to read one event's record: its format, and which fields hold what the
/// handler asks for.
#[derive(Debug)]
pub struct Layout {
    pub fields: Vec<Field>,
    /// The fetch argument field of each role (dynamic events).
    pub roles: HashMap<ArgRole, usize>,
    /// `common_pid`.
    pub pid: Option<usize>,
    /// A return probe.
    pub ret: bool,
    /// A uprobe: the event interrupted user mode.
    pub user: bool,
}

impl Layout {
    pub fn new(fields: Vec<Field>, args: &[(ArgRole, String)], ret: bool, user: bool) -> Layout {
        let pid = fields.iter().position(|f| f.name == "common_pid");
        let roles = args
            .iter()
            .filter_map(|(role, name)| {
                fields
                    .iter()
                    .position(|f| &f.name == name)
                    .map(|i| (*role, i))
            })
            .collect();
        Layout {
            fields,
            roles,
            pid,
            ret,
            user,
        }
    }
}

/// What rstap learned of tasks during one batch of events.
#[derive(Debug, Default)]
pub struct Tasks {
    tgid: HashMap<i32, i64>,
    comm: HashMap<i32, Vec<u8>>,
    saved: Option<HashMap<i32, Vec<u8>>>,
    saved_tgids: Option<HashMap<i32, i64>>,
    /// Names and processes learned from the fork, exec and rename events
    /// rstap enables for itself, in event order: what each thread was called
    /// at the time of its later events.
    known_comm: HashMap<i32, Vec<u8>>,
    known_tgid: HashMap<i32, i64>,
    /// The tracefs the `saved_cmdlines` are read from.
    pub tracefs: PathBuf,
}

impl Tasks {
    /// Forgets what may have changed since (pids are reused, tasks exec).
    pub fn forget(&mut self) {
        self.tgid.clear();
        self.comm.clear();
        self.saved = None;
        self.saved_tgids = None;
    }

    /// `task:task_newtask`: `parent` made `child`, which starts with `comm`.
    pub fn forked(&mut self, parent: i32, child: i32, comm: Vec<u8>, thread: bool) {
        let tgid = if thread {
            self.tgid(parent)
        } else {
            i64::from(child)
        };
        self.known_tgid.insert(child, tgid);
        self.known_comm.insert(child, comm);
    }

    /// `task:task_rename` (and the rename an exec makes).
    pub fn renamed(&mut self, tid: i32, comm: Vec<u8>) {
        self.known_comm.insert(tid, comm);
    }

    /// `sched:sched_process_exec`: a thread other than the leader that execs
    /// takes the leader's id.
    pub fn execed(&mut self, pid: i32, old_pid: i32, filename: &[u8]) {
        let base = filename.rsplit(|&b| b == b'/').next().unwrap_or(filename);
        let comm = base[..base.len().min(15)].to_vec();
        if old_pid != pid {
            self.known_comm.remove(&old_pid);
            self.known_tgid.remove(&old_pid);
        }
        self.known_tgid.insert(pid, i64::from(pid));
        self.known_comm.insert(pid, comm);
    }

    fn tgid(&mut self, tid: i32) -> i64 {
        if let Some(t) = self.known_tgid.get(&tid) {
            return *t;
        }
        if let Some(t) = self.tgid.get(&tid) {
            return *t;
        }
        let t = status_field(tid, "Tgid:", 0)
            .or_else(|| self.saved_tgid(tid))
            .unwrap_or(i64::from(tid));
        self.tgid.insert(tid, t);
        t
    }

    /// The kernel's record of `tid`'s process, for a thread that has gone.
    fn saved_tgid(&mut self, tid: i32) -> Option<i64> {
        let tracefs = &self.tracefs;
        let saved = self.saved_tgids.get_or_insert_with(|| {
            std::fs::read_to_string(tracefs.join("saved_tgids"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_once(' '))
                .filter_map(|(p, t)| Some((p.parse().ok()?, t.trim().parse().ok()?)))
                .collect()
        });
        saved.get(&tid).copied()
    }

    fn comm(&mut self, tid: i32) -> Vec<u8> {
        if tid == 0 {
            return b"swapper/0".to_vec();
        }
        if let Some(c) = self.known_comm.get(&tid).or_else(|| self.comm.get(&tid)) {
            return c.clone();
        }
        let c = match std::fs::read(format!("/proc/{tid}/comm")) {
            Ok(mut c) => {
                if c.last() == Some(&b'\n') {
                    c.pop();
                }
                c
            }
            Err(_) => self.saved_cmdline(tid),
        };
        self.comm.insert(tid, c.clone());
        c
    }

    /// The kernel's record of `tid`'s name, for a task that has gone.
    fn saved_cmdline(&mut self, tid: i32) -> Vec<u8> {
        let tracefs = &self.tracefs;
        let saved = self.saved.get_or_insert_with(|| {
            std::fs::read_to_string(tracefs.join("saved_cmdlines"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_once(' '))
                .filter_map(|(p, c)| Some((p.parse().ok()?, c.as_bytes().to_vec())))
                .collect()
        });
        saved
            .get(&tid)
            .cloned()
            .unwrap_or_else(|| b"<...>".to_vec())
    }
}

/// The `n`th number of the `key` line of `/proc/TID/status`.
fn status_field(tid: i32, key: &str, n: usize) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().nth(n)?.parse().ok()
}

/// Field `n` (1-based, as proc(5) numbers them) of `/proc/TID/stat`.
fn stat_field(tid: i32, n: usize) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/stat")).ok()?;
    // The name in parentheses may hold spaces: count after its closing one.
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(n.checked_sub(3)?)?.parse().ok()
}

const CLONE_THREAD: i64 = 0x10000;

/// The task events rstap enables for itself, so that `execname()` and
/// `pid()` are what they were at each event, not when its handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskEvent {
    NewTask,
    Rename,
    Exec,
}

impl TaskEvent {
    pub const ALL: [(TaskEvent, &'static str, &'static str); 3] = [
        (TaskEvent::NewTask, "task", "task_newtask"),
        (TaskEvent::Rename, "task", "task_rename"),
        (TaskEvent::Exec, "sched", "sched_process_exec"),
    ];
}

/// The event a handler runs for.
#[derive(Debug)]
pub struct Event {
    pub cpu: u32,
    /// CLOCK_MONOTONIC at the event, in ns.
    pub time_ns: i64,
    /// CLOCK_REALTIME - CLOCK_MONOTONIC.
    pub wall_offset_ns: i64,
    pub hz: i64,
    /// The record, from `common_type` on.
    pub record: Vec<u8>,
    pub layout: Arc<Layout>,
    pub tasks: Tasks,
    /// When `target()` was set (`-c`: once the child exists): events before
    /// it see 0, as BPF programs told the pid only then do.
    pub target_since_ns: i64,
}

/// Why a read from the event failed: the message stap gives.
pub type ReadFault = String;

impl Event {
    pub fn new(tracefs: PathBuf, hz: i64, wall_offset_ns: i64) -> Event {
        Event {
            cpu: 0,
            time_ns: 0,
            wall_offset_ns,
            hz,
            record: Vec::new(),
            layout: Arc::new(Layout::new(Vec::new(), &[], false, false)),
            tasks: Tasks {
                tracefs,
                ..Tasks::default()
            },
            target_since_ns: 0,
        }
    }

    /// The thread the event happened in.
    pub fn tid(&self) -> i32 {
        self.layout
            .pid
            .map_or(0, |i| self.scalar(&self.layout.fields[i]) as i32)
    }

    /// A scalar field, sign- or zero-extended as the format says.
    fn scalar(&self, f: &Field) -> i64 {
        let at = f.offset as usize;
        let size = f.size.min(8) as usize;
        let Some(b) = self.record.get(at..at + size) else {
            return 0;
        };
        let mut buf = [0u8; 8];
        buf[..size].copy_from_slice(b);
        let v = u64::from_le_bytes(buf);
        if f.signed && size < 8 {
            let shift = 64 - 8 * size as u32;
            ((v << shift) as i64) >> shift
        } else {
            v as i64
        }
    }

    /// A string field: inline `char[N]` or `__data_loc char[]`, up to its NUL.
    /// `None` for a `__data_loc` string the kernel could not fetch.
    fn string(&self, f: &Field) -> Option<Vec<u8>> {
        let bytes = match f.kind {
            FieldKind::DataLocString => {
                let loc = self.scalar(f) as u32;
                let (off, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
                if len == 0 {
                    return None;
                }
                self.record.get(off..off + len).unwrap_or(&[])
            }
            _ => {
                let at = f.offset as usize;
                self.record.get(at..at + f.size as usize).unwrap_or(&[])
            }
        };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Some(bytes[..end].to_vec())
    }

    /// A target variable.
    pub fn context(&self, value: &ContextValue) -> Result<Value, ReadFault> {
        let role = match value {
            ContextValue::TracepointField(i) => {
                let Some(f) = self.layout.fields.get(*i) else {
                    return Ok(Value::Long(0));
                };
                return Ok(match f.kind {
                    FieldKind::CharArray | FieldKind::DataLocString => {
                        Value::Str(self.string(f).unwrap_or_default())
                    }
                    FieldKind::Scalar | FieldKind::Array => Value::Long(self.scalar(f)),
                });
            }
            ContextValue::Text(s) => return Ok(Value::Str(s.as_bytes().to_vec())),
            ContextValue::FunctionArg(n) => ArgRole::Arg(*n),
            ContextValue::ReturnValue => ArgRole::Return,
            ContextValue::CallFrame { entry } => {
                let sp = self.layout.roles.get(&ArgRole::StackPointer);
                let sp = sp.map_or(0, |&i| self.scalar(&self.layout.fields[i]));
                // At the entry the return address is still on the stack.
                return Ok(Value::Long(sp.wrapping_add(if *entry { 8 } else { 0 })));
            }
            ContextValue::MarkArg(_) => {
                return Err("USDT mark arguments are not available on tracefs".into());
            }
        };
        match self.layout.roles.get(&role) {
            Some(&i) => Ok(Value::Long(self.scalar(&self.layout.fields[i]))),
            None => Ok(Value::Long(0)),
        }
    }

    /// The string a fetch argument captured at `addr`, if one did:
    /// `Some(Err)` when the kernel could not read it there.
    fn captured(&self, addr: i64) -> Option<Result<Vec<u8>, ReadFault>> {
        for (role, &i) in &self.layout.roles {
            let ArgRole::UserString(n) = role else {
                continue;
            };
            let same = self
                .layout
                .roles
                .get(&ArgRole::Arg(*n))
                .is_some_and(|&a| self.scalar(&self.layout.fields[a]) == addr);
            if same {
                return Some(self.string(&self.layout.fields[i]).ok_or_else(|| {
                    format!("user string copy fault -14 at 0x{addr:x} [man error::fault]")
                }));
            }
        }
        None
    }

    /// A NUL-terminated user string of at most `max` bytes.
    pub fn user_string(&self, addr: i64, max: usize) -> Result<Vec<u8>, ReadFault> {
        if let Some(s) = self.captured(addr) {
            return s.map(|mut s| {
                s.truncate(max);
                s
            });
        }
        read_string(self.tid(), addr, max)
            .ok_or_else(|| format!("user string copy fault -14 at 0x{addr:x} [man error::fault]"))
    }

    /// `size` bytes of user memory at `addr`, as a number.
    pub fn user_load(&self, addr: i64, size: usize, signed: bool) -> Result<i64, ReadFault> {
        let mut buf = [0u8; 8];
        let size = size.min(8);
        if !read_memory(self.tid(), addr, &mut buf[..size]) {
            return Err(format!("read fault [man error::fault] at 0x{addr:x}"));
        }
        let v = u64::from_le_bytes(buf);
        Ok(if signed && size < 8 {
            let shift = 64 - 8 * size as u32;
            ((v << shift) as i64) >> shift
        } else {
            v as i64
        })
    }

    /// A built-in about the event, or `None` for one that does not depend on it.
    pub fn builtin(
        &mut self,
        b: Builtin,
        args: &[Value],
        max_string: usize,
    ) -> Option<Result<Value, ReadFault>> {
        let long = |i: usize| args.get(i).map_or(0, Value::long);
        let tid = self.tid();
        let ns = self.time_ns;
        let n = |v: i64| Some(Ok(Value::Long(v)));
        match b {
            Builtin::Target if ns < self.target_since_ns => n(0),
            Builtin::Tid => n(i64::from(tid)),
            Builtin::Pid => n(self.tasks.tgid(tid)),
            Builtin::Ppid => n(stat_field(tid, 4).unwrap_or(0)),
            Builtin::Pgrp => n(stat_field(tid, 5).unwrap_or(0)),
            Builtin::Sid => n(stat_field(tid, 6).unwrap_or(0)),
            Builtin::Uid => n(status_field(tid, "Uid:", 0).unwrap_or(0)),
            Builtin::Euid => n(status_field(tid, "Uid:", 1).unwrap_or(0)),
            Builtin::Gid => n(status_field(tid, "Gid:", 0).unwrap_or(0)),
            Builtin::Egid => n(status_field(tid, "Gid:", 1).unwrap_or(0)),
            Builtin::Execname => Some(Ok(Value::Str(self.tasks.comm(tid)))),
            Builtin::Pexecname => {
                let parent = stat_field(tid, 4).unwrap_or(0) as i32;
                Some(Ok(Value::Str(self.tasks.comm(parent))))
            }
            Builtin::Cpu => n(i64::from(self.cpu)),
            Builtin::IsReturn => n(i64::from(self.layout.ret)),
            Builtin::UserMode => n(i64::from(self.layout.user)),
            Builtin::GettimeofdayS => n((ns + self.wall_offset_ns) / 1_000_000_000),
            Builtin::GettimeofdayMs => n((ns + self.wall_offset_ns) / 1_000_000),
            Builtin::GettimeofdayUs => n((ns + self.wall_offset_ns) / 1_000),
            Builtin::GettimeofdayNs => n(ns + self.wall_offset_ns),
            Builtin::LocalClockNs
            | Builtin::KtimeGetNs
            | Builtin::GetCycles
            | Builtin::CpuClockNs => n(ns),
            Builtin::LocalClockUs => n(ns / 1_000),
            Builtin::LocalClockMs => n(ns / 1_000_000),
            Builtin::LocalClockS => n(ns / 1_000_000_000),
            Builtin::Jiffies => n(ns / (1_000_000_000 / self.hz.max(1))),
            Builtin::UserString => Some(self.user_string(long(0), max_string).map(Value::Str)),
            Builtin::UserStringN => {
                let max = usize::try_from(long(1)).unwrap_or(0).min(max_string);
                Some(self.user_string(long(0), max).map(Value::Str))
            }
            Builtin::UserStringOr => Some(Ok(Value::Str(
                self.user_string(long(0), max_string)
                    .unwrap_or_else(|_| args.get(1).map_or(&[][..], Value::bytes).to_vec()),
            ))),
            Builtin::UserStringNOr => {
                let max = usize::try_from(long(1)).unwrap_or(0).min(max_string);
                Some(Ok(Value::Str(
                    self.user_string(long(0), max)
                        .unwrap_or_else(|_| args.get(2).map_or(&[][..], Value::bytes).to_vec()),
                )))
            }
            Builtin::UserLong => Some(self.user_load(long(0), 8, true).map(Value::Long)),
            Builtin::UserInt => Some(self.user_load(long(0), 4, true).map(Value::Long)),
            Builtin::UserShort => Some(self.user_load(long(0), 2, true).map(Value::Long)),
            Builtin::UserChar => Some(self.user_load(long(0), 1, true).map(Value::Long)),
            _ => None,
        }
    }

    /// A field by name: its number, or its string.
    pub fn field(&self, name: &str) -> Option<Value> {
        let f = self.layout.fields.iter().find(|f| f.name == name)?;
        Some(match f.kind {
            FieldKind::CharArray | FieldKind::DataLocString => {
                Value::Str(self.string(f).unwrap_or_default())
            }
            FieldKind::Scalar | FieldKind::Array => Value::Long(self.scalar(f)),
        })
    }

    /// Learns from one of the task events rstap enables for itself.
    pub fn learn(&mut self, kind: TaskEvent) {
        let long = |v: Option<Value>| v.map_or(0, |v| v.long()) as i32;
        let text = |v: Option<Value>| v.map(|v| v.bytes().to_vec()).unwrap_or_default();
        let tid = self.tid();
        match kind {
            TaskEvent::NewTask => {
                let flags = self.field("clone_flags").map_or(0, |v| v.long());
                let child = long(self.field("pid"));
                let comm = text(self.field("comm"));
                self.tasks
                    .forked(tid, child, comm, flags & CLONE_THREAD != 0);
            }
            TaskEvent::Rename => {
                let who = self.field("pid").map_or(tid, |v| v.long() as i32);
                let comm = text(self.field("newcomm"));
                self.tasks.renamed(who, comm);
            }
            TaskEvent::Exec => {
                let pid = long(self.field("pid"));
                let old = long(self.field("old_pid"));
                let file = text(self.field("filename"));
                self.tasks.execed(pid, old, &file);
            }
        }
    }

    /// The process whose memory and symbols the event concerns.
    pub fn pid(&mut self) -> i64 {
        let tid = self.tid();
        self.tasks.tgid(tid)
    }
}

/// Reads `buf.len()` bytes of `tid`'s memory at `addr`.
fn read_memory(tid: i32, addr: i64, buf: &mut [u8]) -> bool {
    if buf.is_empty() {
        return true;
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    #[expect(unsafe_code, reason = "process_vm_readv has no safe wrapper in std")]
    // SAFETY: `local` describes `buf`, writable for its length; the remote
    // range is only read by the kernel, which checks it.
    let n = unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) };
    usize::try_from(n).is_ok_and(|n| n == buf.len())
}

/// A NUL-terminated string of `tid`'s memory at `addr`, read page by page so
/// that a string ending just before an unmapped page still reads.
fn read_string(tid: i32, addr: i64, max: usize) -> Option<Vec<u8>> {
    const PAGE: usize = 4096;
    let mut out = Vec::new();
    let mut at = addr as usize;
    while out.len() < max {
        let chunk = (PAGE - at % PAGE).min(max - out.len()).min(PAGE);
        let mut buf = vec![0u8; chunk];
        if !read_memory(tid, at as i64, &mut buf) {
            return None;
        }
        if let Some(end) = buf.iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf);
        at += chunk;
    }
    Some(out)
}
