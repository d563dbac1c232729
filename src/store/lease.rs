//! Who holds an outbox lease, and whether that holder still runs. A claimed mail carries its
//! claimer's identity; a claim whose process is gone from this host (`kill -9`, a crash, a
//! reboot) is free at once instead of after the lease time. A claim made on another host, in
//! another PID namespace (a container), or by a process whose identity cannot be read, is
//! trusted until its lease runs out, as before: liveness is only judged where it can be known.

use std::sync::OnceLock;

/// One process's identity: `host boot-id pid-namespace pid start-time`. The start time (in
/// clock ticks since boot, field 22 of `/proc/PID/stat`, proc(5)) tells a reused pid from the
/// process that claimed; the boot id tells a pid from before a reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub boot_id: String,
    pub pid_ns: String,
    pub pid: u32,
    pub start_time: u64,
}

impl Owner {
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.host, self.boot_id, self.pid_ns, self.pid, self.start_time
        )
    }

    pub fn decode(s: &str) -> Option<Owner> {
        let mut it = s.split(' ');
        let owner = Owner {
            host: it.next()?.to_string(),
            boot_id: it.next()?.to_string(),
            pid_ns: it.next()?.to_string(),
            pid: it.next()?.parse().ok()?,
            start_time: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(owner)
    }
}

/// What is known of a lease holder, seen from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Gone,
    /// Another host or PID namespace: the lease holds until it runs out.
    Unknown,
}

/// Judge `holder` from `me`; `start_time_of(pid)` is the start time of a running pid in this
/// namespace, None when no such process runs. Pure, so it is tested without processes.
pub fn liveness(
    me: &Owner,
    holder: &Owner,
    start_time_of: impl Fn(u32) -> Option<u64>,
) -> Liveness {
    if holder.host != me.host {
        return Liveness::Unknown;
    }
    if holder.boot_id != me.boot_id {
        // Same host, another boot: every process of that boot is gone.
        return Liveness::Gone;
    }
    if holder.pid_ns != me.pid_ns {
        return Liveness::Unknown;
    }
    match start_time_of(holder.pid) {
        Some(t) if t == holder.start_time => Liveness::Alive,
        _ => Liveness::Gone,
    }
}

/// The start time of `pid` in this PID namespace, from `/proc/PID/stat`.
pub fn start_time_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/PID/stat` line. The command name (field 2) is in parentheses and may
/// itself hold spaces and parentheses: fields are counted after the last `)`.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After `)`: field 3 (state) is the first; field 22 is the 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process, or None where its identity cannot be read (no `/proc`): claims are then
/// made without an owner and wait out their lease after a crash, as before.
pub fn me() -> Option<&'static Owner> {
    static ME: OnceLock<Option<Owner>> = OnceLock::new();
    ME.get_or_init(|| {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        let host = read("/proc/sys/kernel/hostname").filter(|h| !h.is_empty())?;
        let boot_id = read("/proc/sys/kernel/random/boot_id").filter(|b| !b.is_empty())?;
        let pid_ns = std::fs::read_link("/proc/self/ns/pid")
            .ok()?
            .to_string_lossy()
            .into_owned();
        let pid = std::process::id();
        let start_time = start_time_of(pid)?;
        let clean = |s: String| s.replace(char::is_whitespace, "_");
        Some(Owner {
            host: clean(host),
            boot_id: clean(boot_id),
            pid_ns: clean(pid_ns),
            pid,
            start_time,
        })
    })
    .as_ref()
}

/// Whether the lease holder recorded as `encoded` is known to be gone.
pub fn holder_gone(encoded: &str) -> bool {
    match (me(), Owner::decode(encoded)) {
        (Some(me), Some(holder)) => liveness(me, &holder, start_time_of) == Liveness::Gone,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(host: &str, boot: &str, ns: &str, pid: u32, start: u64) -> Owner {
        Owner {
            host: host.into(),
            boot_id: boot.into(),
            pid_ns: ns.into(),
            pid,
            start_time: start,
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let o = owner("h", "b-1", "pid:[4026531836]", 42, 12345);
        assert_eq!(Owner::decode(&o.encode()), Some(o));
        assert_eq!(Owner::decode("h b ns 42"), None);
        assert_eq!(Owner::decode("h b ns x 1"), None);
        assert_eq!(Owner::decode("h b ns 1 2 3"), None);
    }

    #[test]
    fn judged_only_where_it_can_be_known() {
        let me = owner("h", "b", "ns", 1, 100);
        let running = |pid: u32| (pid == 7).then_some(500);
        assert_eq!(
            liveness(&me, &owner("h", "b", "ns", 7, 500), running),
            Liveness::Alive
        );
        // The pid runs, but it is another process (reused pid).
        assert_eq!(
            liveness(&me, &owner("h", "b", "ns", 7, 499), running),
            Liveness::Gone
        );
        assert_eq!(
            liveness(&me, &owner("h", "b", "ns", 8, 500), running),
            Liveness::Gone
        );
        assert_eq!(
            liveness(&me, &owner("h", "old-boot", "ns", 7, 500), running),
            Liveness::Gone
        );
        assert_eq!(
            liveness(&me, &owner("other", "b", "ns", 8, 1), running),
            Liveness::Unknown
        );
        assert_eq!(
            liveness(&me, &owner("h", "b", "other-ns", 8, 1), running),
            Liveness::Unknown
        );
    }

    #[test]
    fn start_time_after_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (we ird) (x)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 19 20";
        assert_eq!(parse_start_time(line), Some(987654));
        assert_eq!(parse_start_time("1 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_gone() {
        let Some(me) = me() else {
            return; // no /proc here: nothing to judge
        };
        assert!(!holder_gone(&me.encode()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time_of(pid);
        child.wait().unwrap();
        let dead = Owner {
            pid,
            start_time: start.unwrap_or(1),
            ..me.clone()
        };
        assert!(holder_gone(&dead.encode()));
        // Another host's claim is never judged from here.
        let remote = Owner {
            host: "elsewhere".into(),
            ..dead
        };
        assert!(!holder_gone(&remote.encode()));
    }
}
