//! Words the generated script is made of: real kernel functions, syscalls, binaries
//! and target variables, so the text looks like what people run through stap.

pub const KERNEL_FUNCTIONS: &[&str] = &[
    "vfs_read",
    "vfs_write",
    "do_sys_open",
    "do_sys_openat2",
    "tcp_sendmsg",
    "tcp_recvmsg",
    "tcp_v4_connect",
    "__kmalloc",
    "kfree",
    "handle_mm_fault",
    "submit_bio",
    "blk_mq_start_request",
    "do_exit",
    "wake_up_new_task",
    "futex_wait",
    "schedule",
    "__x64_sys_execve",
    "do_unlinkat",
    "ext4_file_write_iter",
    "filemap_fault",
];

pub const FUNCTION_GLOBS: &[&str] = &["tcp_*", "vfs_*", "*@fs/read_write.c", "ext4_*", "*_fault"];

pub const MODULES: &[&str] = &["ext4", "xfs", "nf_conntrack", "btrfs", "kvm"];

pub const SYSCALLS: &[&str] = &[
    "read",
    "write",
    "open",
    "openat",
    "close",
    "mmap",
    "munmap",
    "futex",
    "execve",
    "clone",
    "nanosleep",
    "poll",
    "epoll_wait",
    "sendto",
    "recvfrom",
    "accept4",
];

pub const BINARIES: &[&str] = &[
    "/usr/bin/bash",
    "/usr/sbin/sshd",
    "/usr/bin/python3",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/sbin/nginx",
];

pub const USER_FUNCTIONS: &[&str] = &["main", "readline", "malloc", "free", "ngx_http_handler"];

pub const TRACEPOINTS: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_process_exec",
    "block:block_rq_issue",
    "irq:irq_handler_entry",
    "syscalls:sys_enter_openat",
];

/// Target expressions of a function-entry probe that yield a number.
pub const ENTRY_NUM_TARGETS: &[&str] = &[
    "$count",
    "$pos",
    "$flags",
    "$size",
    "$file->f_flags",
    "$file->f_path->dentry->d_name->len",
    "$sk->__sk_common->skc_family",
    "$bio->bi_iter->bi_size",
    "$task->pid",
    "$mm->map_count",
    "$buf[0]",
    "@cast($file, \"file\", \"kernel\")->f_mode",
    "@var(\"jiffies@kernel/time/timer.c\")",
    "&$task->comm",
];

/// Target expressions of a function-entry probe that yield a string.
pub const ENTRY_STR_TARGETS: &[&str] = &[
    "$$parms",
    "$$locals",
    "$$vars$",
    "$file$",
    "kernel_string($filename)",
    "user_string($buf)",
];

/// Target expressions of a return probe that yield a number.
pub const RETURN_NUM_TARGETS: &[&str] = &[
    "$return",
    "@entry($count)",
    "@entry($file->f_flags)",
    "@entry(gettimeofday_ns())",
];

/// Target expressions of a tracepoint that yield a number.
pub const TRACE_NUM_TARGETS: &[&str] = &["$prev->pid", "$next->prio", "$rq->__data_len", "$irq"];

pub const NUM_BUILTINS: &[&str] = &[
    "pid()",
    "tid()",
    "uid()",
    "cpu()",
    "ppid()",
    "gettimeofday_ns()",
    "gettimeofday_us()",
    "jiffies()",
    "target()",
];

pub const STR_BUILTINS: &[&str] = &[
    "execname()",
    "pp()",
    "probefunc()",
    "ctime()",
    "tz_ctime(gettimeofday_s())",
];

pub const NUM_LOCALS: &[&str] = &[
    "n", "bytes", "delta", "elapsed", "cnt", "idx", "sz", "ts", "val", "total", "start", "width",
];

pub const STR_LOCALS: &[&str] = &["name", "comm", "path", "label", "msg", "who", "tag", "desc"];

pub const GLOBAL_STEMS: &[&str] = &[
    "reads", "writes", "opens", "latency", "bytes", "calls", "errors", "sizes", "owner", "state",
    "last", "peak", "seen", "depth", "waits", "faults",
];

pub const FUNCTION_STEMS: &[&str] = &[
    "fmt", "calc", "scale", "classify", "is_busy", "bucket", "pick", "describe", "percent",
];

pub const WORDS: &[&str] = &[
    "read", "write", "open", "latency", "bytes", "slow", "fast", "total", "process", "thread",
    "cpu", "device", "error", "retry", "queue", "wakeup",
];

pub const REGEXES: &[&str] = &[
    "^(bash|sh|zsh)$",
    "kworker/[0-9]+",
    "^java",
    "ssh[d]?$",
    "^[a-z]+\\\\.py$",
];

pub const NUM_CONVERSIONS: &[&str] = &[
    "%d", "%u", "%x", "%5d", "%-8d", "%#x", "%ld", "%lu", "%016lx",
];

pub const STR_CONVERSIONS: &[&str] = &["%s", "%-16s", "%20s", "%.8s"];

/// `%( ... %?` conditions; every generated branch parses whichever is taken.
pub const PP_CONDITIONS: &[&str] = &[
    "kernel_v >= \"5.4\"",
    "kernel_vr != \"2.6.9\"",
    "arch == \"x86_64\"",
    "arch != \"arm64\" && kernel_v > \"4.18\"",
    "systemtap_v >= \"4.0\"",
    "runtime == \"kernel\"",
    "$# == 0",
    "kernel_v < \"3.10\" || arch == \"i386\"",
];
