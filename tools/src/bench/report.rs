//! The bench report: text for people, one JSON object for machines (`--json`).
//!
//! JSON fields (all per-command figures are over the measured window):
//!
//! | field | meaning |
//! |---|---|
//! | `mode` | `threaded` or `deterministic` |
//! | `machine` | `cpus` (available parallelism), `os`, `arch` |
//! | `config` | the arguments |
//! | `commands`, `reads`, `writes`, `elapsed_s` | commands the core completed in the window; the workload's GOOD reads/writes (whole run) |
//! | `iops`, `mb_per_s` | per wall-clock second (MB = 10^6 bytes of data) |
//! | `latency_us` | `p50`, `p99`, `p99_9`, `mean`, `max` as the initiators measured them on the simulator thread's clock (real time, but advanced once per simulator loop: coarse when the simulator is saturated, e.g. 0 at high QD), and `mean_littles_law` (initiators × QD / IOPS: the exact mean of the closed loop); `null` in deterministic mode (zero-latency virtual time) |
//! | `cpu_ns_per_cmd` | `poller_thread` (its CPU clock; deterministic: the one thread doing everything), `driver_core_busy` (time inside driver+core turns that made progress), `driver_core_turns` (inside all turns), `simulator` (threaded: process CPU minus the poller's; deterministic: the thread's CPU outside the turns) |
//! | `allocs_per_cmd`, `allocs` | `process` (every thread, the simulator's included) and `driver_core` (inside the driver+core turns, counted on the poller thread in both modes) |
//! | `bytes_copied_per_cmd` | the driver's `bytes_copied` counter per command |
//! | `host_bytes_per_cmd`, `host_bytes` | bytes the host CPU read or wrote in LUN memory (`lun`) and the core's buffer pool (`pool`): 0 on a zero-copy path |
//! | `per_cmd` | CTIO7s, doorbells, interrupts, register reads and writes, driver+core turns (all and busy) per command |
//! | `verify` | `enabled`, `blocks_verified`, `errors`, `first_errors` |
//! | `status` | `good`, `bad_status`, `failed`, `not_sent` (whole run) |
//! | `baseline` | `memcpy_bytes`, `memcpy_ns`, and the command costs in memcpys (`driver_core_busy_x`, `poller_thread_x`) |
//! | `driver` | the driver's error counters since probe (BUSY answers, core refusals, terminates, CTIO errors, stale completions, timeouts, chip resets) |
//! | `sim` | protocol `violations`, `iommu_faults`, `open_exchanges` after the run |
//! | `pcap`, `trace` | the files written (`null` if none) |

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rscst_sim::WorkloadReport;
use serde_json::{Value, json};

use super::BenchArgs;
use super::run::{Stop, Window};

/// Everything the report shows.
pub struct Report<'a> {
    pub args: &'a BenchArgs,
    pub win: &'a Window,
    pub wl: &'a WorkloadReport,
    pub driver: rscst_qla::Stats,
    pub baseline_ns: f64,
    pub violations: usize,
    pub iommu_faults: usize,
    pub open_exchanges: u16,
    pub pcap: Option<(PathBuf, u64)>,
    pub trace: Option<(PathBuf, u64, u64)>,
}

fn per(x: f64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { x / n as f64 }
}

fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Rounds for JSON (3 decimals keeps it readable; counts stay integers).
fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Report<'_> {
    fn n(&self) -> u64 {
        self.win.commands
    }

    fn secs(&self) -> f64 {
        self.win.wall.as_secs_f64().max(1e-9)
    }

    fn iops(&self) -> f64 {
        self.n() as f64 / self.secs()
    }

    fn mbs(&self) -> f64 {
        self.win.bytes as f64 / self.secs() / 1e6
    }

    fn simulator_ns(&self) -> f64 {
        if self.args.deterministic {
            per(
                ns(self.win.poller_cpu.saturating_sub(self.win.in_turns)),
                self.n(),
            )
        } else {
            per(
                ns(self.win.process_cpu.saturating_sub(self.win.poller_cpu)),
                self.n(),
            )
        }
    }

    /// Mean latency from Little's law: the workload is a closed loop that keeps
    /// initiators × QD commands in flight, so mean latency = in flight / IOPS. Exact
    /// for the mean whatever the simulator's clock granularity.
    fn littles_law_us(&self) -> f64 {
        let inflight = self.args.initiators as f64 * f64::from(self.args.qd);
        inflight / self.iops().max(1e-9) * 1e6
    }

    fn host_bytes(&self) -> u64 {
        self.win.lun_bytes + self.win.pool_bytes
    }

    fn latency(&self) -> Option<[f64; 5]> {
        if self.args.deterministic {
            return None;
        }
        let h = &self.wl.latency;
        Some([
            us(h.quantile(0.5)),
            us(h.quantile(0.99)),
            us(h.quantile(0.999)),
            us(h.mean()),
            us(h.max()),
        ])
    }

    /// What makes the run a failure: data errors, failed commands, interface violations.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let wl = self.wl;
        if wl.verify_errors > 0 {
            p.push(format!("verify found {} bad blocks", wl.verify_errors));
        }
        if wl.failed + wl.bad_status + wl.not_sent > 0 {
            p.push(format!(
                "{} commands failed, {} ended with a bad status, {} were not sent",
                wl.failed, wl.bad_status, wl.not_sent
            ));
        }
        if self.violations > 0 {
            p.push(format!("{} interface violations", self.violations));
        }
        if self.iommu_faults > 0 {
            p.push(format!("{} IOMMU faults", self.iommu_faults));
        }
        if self.open_exchanges > 0 {
            p.push(format!("{} exchanges left open", self.open_exchanges));
        }
        if let Some((_, _, dropped)) = &self.trace
            && *dropped > 0
        {
            p.push(format!("the trace lost {dropped} events"));
        }
        p
    }

    /// The JSON object.
    pub fn json(&self) -> Value {
        let a = self.args;
        let w = self.win;
        let n = self.n();
        let lat = self.latency().map(|l| {
            json!({
                "clock": "real",
                "p50": r3(l[0]), "p99": r3(l[1]), "p99_9": r3(l[2]),
                "mean": r3(l[3]), "max": r3(l[4]),
                "mean_littles_law": r3(self.littles_law_us()),
            })
        });
        let busy = per(ns(w.busy), n);
        let poller = per(ns(w.poller_cpu), n);
        json!({
            "mode": if a.deterministic { "deterministic" } else { "threaded" },
            "machine": {
                "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "os": std::env::consts::OS,
                "arch": std::env::consts::ARCH,
            },
            "config": {
                "bs": a.bs,
                "lba_size": a.lba_size,
                "read_percent": a.read_percent,
                "pattern": format!("{:?}", a.pattern).to_lowercase(),
                "qd": a.qd,
                "initiators": a.initiators,
                "seconds": match a.stop() { Stop::Time(d) => json!(d.as_secs_f64()), Stop::Commands(_) => Value::Null },
                "commands": a.commands,
                "verify": a.verify(),
                "lun": a.lun.to_string(),
                "lun_mib": a.lun_mib,
                "seed": a.seed,
                "irq": format!("{:?}", a.irq).to_lowercase(),
                "idle": if a.deterministic { Value::Null } else { json!(format!("{:?}", a.idle).to_lowercase()) },
            },
            "commands": n,
            "reads": self.wl.reads,
            "writes": self.wl.writes,
            "elapsed_s": r3(w.wall.as_secs_f64() * 1000.0) / 1000.0,
            "iops": self.iops().round(),
            "mb_per_s": r3(self.mbs()),
            "latency_us": lat,
            "cpu_ns_per_cmd": {
                "poller_thread": r3(poller),
                "driver_core_busy": r3(busy),
                "driver_core_turns": r3(per(ns(w.in_turns), n)),
                "simulator": r3(self.simulator_ns()),
            },
            "allocs_per_cmd": {
                "driver_core": w.allocs_driver_core.map(|x| per(x as f64, n)),
                "process": r3(per(w.allocs_process as f64, n)),
            },
            "allocs": {
                "driver_core": w.allocs_driver_core,
                "process": w.allocs_process,
            },
            "bytes_copied_per_cmd": per(w.driver_copied as f64, n),
            "host_bytes_per_cmd": per(self.host_bytes() as f64, n),
            "host_bytes": {
                "lun": w.lun_bytes,
                "pool": w.pool_bytes,
                "driver_copied": w.driver_copied,
            },
            "per_cmd": {
                "ctios": r3(per(w.ctios as f64, n)),
                "doorbells": r3(per(w.doorbells as f64, n)),
                "interrupts": r3(per(w.interrupts as f64, n)),
                "mmio_reads": r3(per(w.mmio_reads as f64, n)),
                "mmio_writes": r3(per(w.mmio_writes as f64, n)),
                "turns": r3(per(w.turns as f64, n)),
                "busy_turns": r3(per(w.busy_turns as f64, n)),
            },
            "verify": {
                "enabled": a.verify(),
                "blocks_verified": self.wl.blocks_verified,
                "errors": self.wl.verify_errors,
                "first_errors": self.wl.first_errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            },
            "status": {
                "good": self.wl.ok,
                "bad_status": self.wl.bad_status,
                "failed": self.wl.failed,
                "not_sent": self.wl.not_sent,
            },
            "baseline": {
                "memcpy_bytes": a.bs,
                "memcpy_ns": r3(self.baseline_ns),
                "driver_core_busy_x": r3(busy / self.baseline_ns.max(1e-9)),
                "poller_thread_x": r3(poller / self.baseline_ns.max(1e-9)),
            },
            "driver": {
                "busy": self.driver.busy,
                "core_rejected": self.driver.core_rejected,
                "terminates": self.driver.terminates,
                "ctio_errors": self.driver.ctio_errors,
                "stale_completions": self.driver.stale_completions,
                "completion_timeouts": self.driver.completion_timeouts,
                "resets": self.driver.resets,
            },
            "sim": {
                "violations": self.violations,
                "iommu_faults": self.iommu_faults,
                "open_exchanges": self.open_exchanges,
            },
            "pcap": self.pcap.as_ref().map(|(p, f)| json!({"file": p.display().to_string(), "frames": f})),
            "trace": self.trace.as_ref().map(|(p, r, d)| json!({"file": p.display().to_string(), "records": r, "dropped": d})),
        })
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.args;
        let w = self.win;
        let n = self.n();
        let rw = match a.read_percent {
            100 => "reads".to_string(),
            0 => "writes".to_string(),
            p => format!("{p}% reads"),
        };
        writeln!(
            f,
            "rscst bench ({}): {} initiator(s) × QD {}, {} B {:?} {rw}, {} LUN {} MiB, verify {}",
            if a.deterministic {
                "deterministic, one thread"
            } else {
                "threaded"
            },
            a.initiators,
            a.qd,
            a.bs,
            a.pattern,
            a.lun,
            a.lun_mib,
            if a.verify() { "on" } else { "off" },
        )?;
        writeln!(
            f,
            "  commands     {n} in {:.3} s ({} reads, {} writes GOOD; {} bad status, {} failed)",
            w.wall.as_secs_f64(),
            self.wl.reads,
            self.wl.writes,
            self.wl.bad_status,
            self.wl.failed
        )?;
        writeln!(
            f,
            "  throughput   {:.0} IOPS, {:.1} MB/s",
            self.iops(),
            self.mbs()
        )?;
        match self.latency() {
            Some(l) => writeln!(
                f,
                "  latency      p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs (mean {:.1}, max {:.1}; at the initiators, \
                 on the simulator thread's clock); mean by Little's law {:.1} µs",
                l[0],
                l[1],
                l[2],
                l[3],
                l[4],
                self.littles_law_us()
            )?,
            None => writeln!(
                f,
                "  latency      n/a (deterministic: zero-latency virtual time)"
            )?,
        }
        writeln!(
            f,
            "  CPU/command  driver+core {:.0} ns busy ({:.0} ns in all turns), poller thread {:.0} ns, simulator {:.0} ns",
            per(ns(w.busy), n),
            per(ns(w.in_turns), n),
            per(ns(w.poller_cpu), n),
            self.simulator_ns()
        )?;
        if !a.deterministic {
            writeln!(
                f,
                "               (threaded: a turn's time includes the simulated register writes that wake the simulator thread)"
            )?;
        }
        match w.allocs_driver_core {
            Some(x) => writeln!(
                f,
                "  allocations  {:.2}/command in driver+core ({x} in the window), {:.2}/command in the process (simulator included)",
                per(x as f64, n),
                per(w.allocs_process as f64, n)
            )?,
            None => writeln!(
                f,
                "  allocations  {:.2}/command in the process (simulator included)",
                per(w.allocs_process as f64, n)
            )?,
        }
        writeln!(
            f,
            "  copies       {:.0} B/command copied by the driver, {:.0} B/command moved by the host through LUN memory and the buffer pool",
            per(w.driver_copied as f64, n),
            per(self.host_bytes() as f64, n)
        )?;
        writeln!(
            f,
            "  per command  {:.2} CTIO7s, {:.2} doorbells, {:.2} interrupts, {:.2} register reads, {:.2} register writes, {:.2} turns ({:.2} busy)",
            per(w.ctios as f64, n),
            per(w.doorbells as f64, n),
            per(w.interrupts as f64, n),
            per(w.mmio_reads as f64, n),
            per(w.mmio_writes as f64, n),
            per(w.turns as f64, n),
            per(w.busy_turns as f64, n)
        )?;
        writeln!(
            f,
            "  baseline     memcpy of {} B: {:.1} ns; driver+core busy = {:.1} memcpys, poller thread = {:.1} memcpys",
            a.bs,
            self.baseline_ns,
            per(ns(w.busy), n) / self.baseline_ns.max(1e-9),
            per(ns(w.poller_cpu), n) / self.baseline_ns.max(1e-9)
        )?;
        if a.verify() {
            writeln!(
                f,
                "  verify       {} blocks checked, {} errors",
                self.wl.blocks_verified, self.wl.verify_errors
            )?;
            for e in &self.wl.first_errors {
                writeln!(f, "               {e}")?;
            }
        }
        if let Some((p, frames)) = &self.pcap {
            writeln!(f, "  pcap         {frames} frames in {}", p.display())?;
        }
        if let Some((p, records, dropped)) = &self.trace {
            writeln!(
                f,
                "  trace        {records} events in {} ({dropped} lost) — traced run: timings not comparable",
                p.display(),
            )?;
        }
        if self.violations + self.iommu_faults > 0 || self.open_exchanges > 0 {
            writeln!(
                f,
                "  simulator    {} violations, {} IOMMU faults, {} open exchanges",
                self.violations, self.iommu_faults, self.open_exchanges
            )?;
        }
        Ok(())
    }
}
