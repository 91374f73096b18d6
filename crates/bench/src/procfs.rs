//! CPU time and memory of a process, read from `/proc` (Linux only). CPU time counts every
//! thread of the process, user and system.

use anyhow::Context;

/// Clock ticks per second, the unit of `/proc/<pid>/stat` CPU times.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Ticks per second.
    pub ticks_per_s: u64,
    /// True when `getconf CLK_TCK` failed and [`ASSUMED_CLK_TCK`] is used.
    pub assumed: bool,
}

/// Memory of a process.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size since start (`VmHWM`).
    pub hwm_kib: u64,
}

/// USER_HZ on every mainstream Linux architecture.
const ASSUMED_CLK_TCK: u64 = 100;

/// Asks `getconf CLK_TCK`, falling back to [`ASSUMED_CLK_TCK`].
pub async fn clock_ticks_per_second() -> Clock {
    let asked = tokio::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .await
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&t| t > 0);
    match asked {
        Some(ticks_per_s) => Clock {
            ticks_per_s,
            assumed: false,
        },
        None => Clock {
            ticks_per_s: ASSUMED_CLK_TCK,
            assumed: true,
        },
    }
}

/// User plus system CPU time of `pid` so far, in clock ticks.
///
/// # Errors
/// The process is gone or `/proc` is not Linux's.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("cannot parse {path}"))
}

/// Current and peak RSS of `pid`.
///
/// # Errors
/// The process is gone or `/proc` is not Linux's.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_memory(&status).with_context(|| format!("cannot parse {path}"))
}

/// utime + stime: fields 14 and 15 of `stat`, counted after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    // After the name, the first field is field 3 (state).
    let mut fields = after_comm.split_whitespace().skip(14 - 3);
    let utime = fields.next()?.parse::<u64>().ok()?;
    let stime = fields.next()?.parse::<u64>().ok()?;
    Some(utime + stime)
}

fn parse_memory(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_odd_process_names() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 0 0 20 0 3 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
    }

    #[test]
    fn memory_reads_rss_and_peak_in_kib() {
        let status = "Name:\tswitchyard\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        let m = parse_memory(status).unwrap();
        assert_eq!((m.rss_kib, m.hwm_kib), (10240, 20480));
    }

    #[test]
    fn this_process_can_be_read() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        assert!(memory(pid).unwrap().rss_kib > 0);
    }
}
