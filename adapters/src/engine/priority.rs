//! Inference yields the CPU to the request path: the threads that run ONNX Runtime
//! (the callers of `infer` and the intra-op pools, which inherit the nice value of the
//! thread that builds the session) run at a higher nice value than the async runtime,
//! so `/health`, SSE and request parsing answer at once while every core computes.
//!
//! Linux keeps the nice value per thread; raising it needs no privilege (lowering it
//! back would), so a blocking-pool thread once lowered stays lowered — fine, since the
//! blocking pool only does CPU work of this kind.

use std::cell::Cell;

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Raises the calling thread's nice value to `nice` once (0: leave it). Errors are
/// logged and ignored: priority is a refinement, never a reason to fail.
pub fn lower_current_thread(nice: i32) {
    if nice <= 0 || LOWERED.with(Cell::get) {
        return;
    }
    LOWERED.with(|l| l.set(true));
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread's own id; no memory is shared.
        let result = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice)
        };
        if result != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "could not lower the inference thread's priority"
            );
        }
    }
}

/// The calling thread's nice value (tests).
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn current_nice() -> i32 {
    // SAFETY: as above.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn lowers_only_the_calling_thread_and_only_once() {
        std::thread::spawn(|| {
            let before = current_nice();
            lower_current_thread(before + 3);
            assert_eq!(current_nice(), before + 3);
            // A second call changes nothing.
            lower_current_thread(before + 7);
            assert_eq!(current_nice(), before + 3);
            // Threads started from here inherit it (ONNX Runtime's pools).
            let child = std::thread::spawn(current_nice).join().unwrap();
            assert_eq!(child, before + 3);
        })
        .join()
        .unwrap();
        // This thread was left alone.
        std::thread::spawn(|| {
            let mine = current_nice();
            lower_current_thread(0);
            assert_eq!(current_nice(), mine);
        })
        .join()
        .unwrap();
    }
}
