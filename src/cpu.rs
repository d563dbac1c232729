//! Keeping klachtd on one CPU. Its work is a chain of short steps handed between the async
//! runtime's thread and SQLite's worker thread (one hand-over per statement). Waking a thread
//! that sleeps on another CPU costs more than the step itself: on a 2-vCPU VM, ingest ran 3x
//! faster with both threads on one CPU (bench-results.md). klachtd needs far less than a CPU,
//! so `[runtime] single_cpu = true` (the default) pins the process's threads to the CPU it
//! starts on; threads started later inherit that.

/// Pin the calling thread (and so every thread it starts afterwards) to the CPU it runs on
/// now, which is always one the process may use. Returns that CPU.
#[cfg(target_os = "linux")]
pub fn pin_to_current_cpu() -> std::io::Result<usize> {
    // SAFETY: sched_getcpu has no arguments; sched_setaffinity reads a cpu_set_t owned by this
    // frame, of the size passed.
    unsafe {
        let cpu = libc::sched_getcpu();
        let cpu = usize::try_from(cpu).map_err(|_| std::io::Error::last_os_error())?;
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(cpu)
    }
}

#[cfg(not(target_os = "linux"))]
pub fn pin_to_current_cpu() -> std::io::Result<usize> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "CPU pinning is only implemented on Linux",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn pins_this_thread_to_one_cpu() {
        // In a thread of its own, so the test harness's other threads are not pinned.
        let cpus = std::thread::spawn(|| {
            let cpu = super::pin_to_current_cpu().expect("pin");
            // SAFETY: reads the affinity of this thread into a zeroed set of the right size.
            let count = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                assert_eq!(
                    libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                    0
                );
                assert!(libc::CPU_ISSET(cpu, &set));
                libc::CPU_COUNT(&set)
            };
            // A thread started now inherits the mask.
            let child = std::thread::spawn(|| unsafe { libc::sched_getcpu() })
                .join()
                .expect("child");
            (count, cpu, child)
        })
        .join()
        .expect("thread");
        assert_eq!(cpus.0, 1);
        assert_eq!(usize::try_from(cpus.2).ok(), Some(cpus.1));
    }
}
