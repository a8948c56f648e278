//! One long-lived thread with the stack rstap's binary runs its passes on
//! (`rstap_grammar::stack::WORKER_STACKS`), which runs every input: a thread
//! of that size made per input cost more than parsing the input did.
//!
//! A panic on the worker still reaches libFuzzer as a crash of the input it
//! was running (libfuzzer-sys's panic hook aborts the process), and a hang as
//! a timeout (the main thread waits for the worker while libFuzzer's timer
//! runs).

use rstap_grammar::stack::WORKER_STACKS;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

struct Worker {
    jobs: SyncSender<Job>,
    done: Mutex<Receiver<()>>,
}

fn worker() -> &'static Worker {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (jobs, inbox) = sync_channel::<Job>(0);
        let (finished, done) = sync_channel::<()>(0);
        let inbox = Arc::new(Mutex::new(inbox));
        // Largest stack first, as the binary does.
        let started = WORKER_STACKS.iter().any(|&size| {
            let (inbox, finished) = (Arc::clone(&inbox), finished.clone());
            std::thread::Builder::new()
                .stack_size(size)
                .spawn(move || serve(&inbox, &finished))
                .is_ok()
        });
        assert!(started, "no worker thread could start");
        Worker {
            jobs,
            done: Mutex::new(done),
        }
    })
}

fn serve(inbox: &Mutex<Receiver<Job>>, finished: &SyncSender<()>) {
    let Ok(inbox) = inbox.lock() else {
        return;
    };
    for job in inbox.iter() {
        job();
        if finished.send(()).is_err() {
            return;
        }
    }
}

/// Runs `job` on the worker and waits for it.
pub fn run(job: impl FnOnce() + Send + 'static) {
    let w = worker();
    w.jobs.send(Box::new(job)).expect("the worker runs");
    w.done
        .lock()
        .expect("one input at a time")
        .recv()
        .expect("the worker finished the input");
}
