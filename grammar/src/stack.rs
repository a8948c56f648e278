//! The stack rstap's passes run on. The parser's actions build the tree without
//! recursion, but every pass after it (validation, elaboration, lowering, the
//! printers, dropping the tree) recurses over it, about a kilobyte of stack a
//! level; [`crate::ast`] trees nest up to the validator's limit. The binary, its
//! tests and its fuzz targets all run those passes on a stack of this size.

use std::sync::Mutex;

/// Reserved, not committed: only the pages a script's depth touches are used.
/// Largest first; a machine with about 1 GiB of memory refuses the first.
pub const WORKER_STACKS: [usize; 3] = [1 << 30, 1 << 28, 1 << 26];

/// Runs `f` on a thread with the largest of [`WORKER_STACKS`] the machine
/// gives, and waits for it: `Err` if no such thread could start, else what
/// `join` says (`Err` holding the payload of a panic in `f`).
pub fn on_worker_stack<T: Send>(
    f: impl FnOnce() -> T + Send,
) -> std::io::Result<std::thread::Result<T>> {
    // A refused spawn drops its closure: each attempt takes `f` from here.
    let f = Mutex::new(Some(f));
    std::thread::scope(|s| {
        let mut refused = std::io::Error::other("no stack size tried");
        for size in WORKER_STACKS {
            let attempt = std::thread::Builder::new()
                .stack_size(size)
                .spawn_scoped(s, || {
                    let f = f.lock().map_or(None, |mut f| f.take());
                    f.map(|f| f())
                });
            match attempt {
                Ok(worker) => {
                    return Ok(worker
                        .join()
                        .map(|r| r.expect("a started worker has its closure")));
                }
                Err(e) => refused = e,
            }
        }
        Err(refused)
    })
}
