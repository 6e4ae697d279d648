//! What the numbers were measured on, and how much memory a process holds, both read from
//! `/proc`. The parsers are pure so they are tested on fixed text.

use std::path::Path;

/// The machine a run happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Online CPUs (`nproc`).
    pub cpus: usize,
    /// The first `model name` in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal` in KiB.
    pub mem_total_kib: u64,
    /// The running kernel release (`uname -r`).
    pub kernel: String,
}

impl Machine {
    /// Read the current machine's description; missing pieces read as "unknown" / 0.
    pub fn current() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            cpu_model: cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into()),
            mem_total_kib: kib_field(&read("/proc/meminfo"), "MemTotal").unwrap_or(0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        }
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        format!(
            "{} CPUs ({}), {:.1} GiB memory, Linux {}",
            self.cpus,
            self.cpu_model,
            self.mem_total_kib as f64 / (1024.0 * 1024.0),
            self.kernel
        )
    }
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`): other work on the machine shows
/// up here, and the numbers are only comparable between runs on a quiet machine.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Whether this process runs as root (uid 0), which network namespaces need.
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().next() == Some("0"))
}

/// The first `model name` line of `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        l.strip_prefix("model name")
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
    })
}

/// The value of a `Name:   123 kB` line (as in `/proc/PID/status`, `/proc/meminfo`,
/// `/proc/PID/smaps_rollup`), in KiB.
pub fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Memory held by one process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Resident set size (`VmRSS`).
    pub rss_kib: u64,
    /// Proportional set size (`Pss` from `smaps_rollup`): shared pages count by share, so it
    /// is what the process really costs the machine. `None` when the kernel does not expose it.
    pub pss_kib: Option<u64>,
    /// The peak resident set size so far (`VmHWM`).
    pub peak_rss_kib: u64,
    /// Unique set size: `Private_Clean` + `Private_Dirty` from `smaps_rollup`, the memory that
    /// would be freed if the process ended. `None` when the kernel does not expose it.
    pub uss_kib: Option<u64>,
}

/// Read the memory of process `pid`.
pub fn memory(pid: u32) -> std::io::Result<Memory> {
    let dir = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(dir.join("status"))?;
    let rollup = std::fs::read_to_string(dir.join("smaps_rollup")).unwrap_or_default();
    Ok(Memory {
        rss_kib: kib_field(&status, "VmRSS").unwrap_or(0),
        pss_kib: kib_field(&rollup, "Pss"),
        peak_rss_kib: kib_field(&status, "VmHWM").unwrap_or(0),
        uss_kib: uss(&rollup),
    })
}

/// `Private_Clean` + `Private_Dirty` of `smaps_rollup` text.
pub fn uss(rollup: &str) -> Option<u64> {
    Some(kib_field(rollup, "Private_Clean")? + kib_field(rollup, "Private_Dirty")?)
}

/// One process as `/proc` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its arguments (`/proc/PID/cmdline`, split at NULs).
    pub argv: Vec<String>,
}

/// Every process on the machine that could be read (processes that end while we look are
/// skipped).
pub fn processes() -> Vec<Process> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some(Process {
                pid,
                ppid: parent_pid(&stat)?,
                argv: split_cmdline(&cmdline),
            })
        })
        .collect()
}

/// The parent pid (field 4) of `/proc/PID/stat` text. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted after the
/// last `)`.
pub fn parent_pid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `/proc/PID/cmdline` bytes as arguments.
pub fn split_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_is_taken_from_the_first_processor() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(cpu_model(text).as_deref(), Some("AMD EPYC 7B13"));
    }

    #[test]
    fn kib_field_reads_the_named_line_only() {
        let status = "VmHWM:\t   41000 kB\nVmRSS:\t   38124 kB\nRssAnon:\t 20000 kB\n";
        assert_eq!(kib_field(status, "VmRSS"), Some(38124));
        assert_eq!(kib_field(status, "VmHWM"), Some(41000));
        assert_eq!(
            kib_field(status, "Rss"),
            None,
            "a prefix of another name must not match"
        );
    }

    #[test]
    fn pss_is_read_from_smaps_rollup_text() {
        let rollup = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:  38000 kB\nPss:  31000 kB\nPss_Anon: 20000 kB\n";
        assert_eq!(kib_field(rollup, "Pss"), Some(31000));
    }

    #[test]
    fn uss_adds_the_private_clean_and_dirty_pages() {
        let rollup =
            "Rss: 9000 kB\nPss: 5000 kB\nShared_Clean: 6000 kB\nPrivate_Clean: 1000 kB\nPrivate_Dirty: 2000 kB\n";
        assert_eq!(uss(rollup), Some(3000));
        assert_eq!(uss("Rss: 9000 kB\n"), None);
    }

    #[test]
    fn parent_pid_is_read_after_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(parent_pid("4242 (podway) S 17 4242 4242 0 -1"), Some(17));
        assert_eq!(parent_pid("99 (a (b) c) R 1 99 99 0"), Some(1));
        assert_eq!(parent_pid("garbage"), None);
    }

    #[test]
    fn cmdline_splits_at_nuls_and_keeps_spaces_inside_an_argument() {
        let raw = b"podway\0builtin-image\0echo-hname\0-g\0daemon off;\0";
        assert_eq!(
            split_cmdline(raw),
            ["podway", "builtin-image", "echo-hname", "-g", "daemon off;"]
        );
    }

    #[test]
    fn this_process_is_listed_with_its_parent() {
        let me = std::process::id();
        let all = processes();
        let found = all.iter().find(|p| p.pid == me).expect("this process");
        assert_eq!(found.ppid, std::os::unix::process::parent_id());
    }

    #[test]
    fn own_process_memory_is_readable() {
        let m = memory(std::process::id()).unwrap();
        assert!(m.rss_kib > 0);
        assert!(m.peak_rss_kib >= m.rss_kib);
    }
}
