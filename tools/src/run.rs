//! `rscst run`: start the target and serve until Ctrl-C (or SIGTERM).
//!
//! With no arguments: one simulated ISP2532 port on a simulated fabric, a 1 GiB thin,
//! removable RAM LU at LUN 0 (512-byte logical blocks in 4096-byte physical blocks:
//! READ CAPACITY(16) reports LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 3), and the iSCSI
//! door on 127.0.0.1:3260 with one target. `--config` describes other LUs (see
//! `rscst_tools::config`: `block_size`, `physical_block_size`, ...).
//! Prints the port's WWPN and the URL to use, then one stats line per second.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use clap::Args;
use rscst_sim::gateway::{GatewayConfig, ThreadedGateway};
use rscst_sim::iscsi::net::{NetConfig, Server};
use rscst_sim::iscsi::{PortalConfig, TargetConfig};
use rscst_sim::{SimConfig, SimThread};

use crate::CliError;
use crate::config::{self, BackendKind, Config, Mode};
use crate::stack::{self, Clock, Parts, RtcStack, Snapshot, StatsLine};

/// Arguments of `rscst run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// TOML configuration (ports, LUs and backends, initiator groups, LUN maps, iSCSI).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the iSCSI door (ADDR:PORT, ADDR or PORT); default 127.0.0.1:3260.
    #[arg(long, value_name = "ADDR:PORT")]
    pub iscsi: Option<String>,
    /// Scheduling: rtc (one poll loop, default) or threaded (card, driver+core and
    /// portal on their own threads).
    #[arg(long, value_name = "rtc|threaded")]
    pub mode: Option<String>,
    /// Size of the default RAM LU (e.g. 256MiB; 512-byte blocks, 4096-byte physical
    /// blocks); ignored with LUs in --config.
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,
    /// iSCSI target name.
    #[arg(long, value_name = "IQN")]
    pub target: Option<String>,
    /// Seconds between stats lines; 0 for none.
    #[arg(long, value_name = "SECS", default_value = "1")]
    pub stats: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Microseconds the portal loop keeps polling without blocking after the last work.
    /// Default 50. In rtc mode it spins only while the initiators' commands come one or
    /// two a pass (low queue depth, where the spin saves a wake-up per command); after a
    /// larger batch it blocks at once for a while, and commands batch up meanwhile.
    /// 0: never spin.
    #[arg(long, value_name = "MICROS")]
    pub spin: Option<u64>,
    /// Interrupt moderation of the portal loop (rtc mode), in microseconds: while the
    /// initiators' commands come more than two a pass (high queue depth) and a pass
    /// moves at most 128 KiB (small transfers), the loop lets
    /// them gather this long after a pass before it looks again, so one wake-up, read
    /// and write serve several. Trades up to that much latency at those depths for CPU
    /// per IO. Default 30; 0: off.
    #[arg(long, value_name = "MICROS")]
    pub coalesce: Option<u64>,
}

/// The configuration the arguments describe.
pub fn resolve(args: &RunArgs) -> Result<Config, CliError> {
    let mut cfg = match &args.config {
        Some(p) => config::load(p).map_err(|e| CliError(e.to_string()))?,
        None => Config::default(),
    };
    if let Some(m) = &args.mode {
        cfg.mode = m.parse().map_err(|e| CliError(format!("--mode: {e}")))?;
    }
    if let Some(s) = &args.size {
        let n = config::parse_size(s).map_err(|e| CliError(format!("--size: {e}")))?;
        if args.config.is_none() {
            if n == 0 || n % 512 != 0 {
                return Err(CliError(format!(
                    "--size: {n} is not a positive multiple of 512"
                )));
            }
            cfg.lus[0].size = n;
        }
    }
    if let Some(a) = &args.iscsi {
        let listen = rscst_sim::iscsi::net::parse_listen(a)
            .map_err(|e| CliError(format!("--iscsi: {a:?}: {e}")))?;
        let spec = cfg
            .iscsi
            .get_or_insert_with(|| config::Config::default().iscsi.expect("default door"));
        spec.listen = listen;
    }
    if let Some(t) = &args.target {
        let spec = cfg
            .iscsi
            .get_or_insert_with(|| config::Config::default().iscsi.expect("default door"));
        // Checked again by the portal; an early, clear message here.
        if rscst_sim::iscsi::Portal::new(PortalConfig {
            targets: vec![TargetConfig::open(t.clone())],
            ..Default::default()
        })
        .is_err()
        {
            return Err(CliError(format!("--target: {t:?} is not an iSCSI name")));
        }
        spec.target = t.clone();
    }
    if !(args.stats >= 0.0 && args.stats.is_finite()) {
        return Err(CliError("--stats: must be 0 or more seconds".into()));
    }
    if let Some(d) = args.duration
        && !(d > 0.0 && d.is_finite())
    {
        return Err(CliError("--duration: must be more than 0 seconds".into()));
    }
    Ok(cfg)
}

fn wwn_text(w: u64) -> String {
    w.to_be_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn human(bytes: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() && v.fract() == 0.0 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v} {}", U[i])
}

fn banner(cfg: &Config, port_id: Option<rscst_fw::PortId>, listen: Option<std::net::SocketAddr>) {
    let pid = port_id.map_or("-".to_owned(), |p| p.to_string());
    println!(
        "rscst: simulated ISP2532 port up: WWPN {} WWNN {} N_Port {pid}, mode {}",
        wwn_text(cfg.wwpn),
        wwn_text(cfg.wwnn),
        cfg.mode
    );
    for (lun, li) in &cfg.map {
        let l = &cfg.lus[*li];
        let kind = match &l.backend {
            BackendKind::Ram => "RAM".to_owned(),
            BackendKind::Null => "null".to_owned(),
            BackendKind::File(p) => format!("file {}", p.display()),
        };
        println!(
            "rscst: LUN {lun}: {} ({kind}, {}, {}-byte blocks{}{}{}{})",
            l.name,
            human(l.size),
            l.block_size,
            if l.physical_block_size != l.block_size {
                format!(" ({}-byte physical)", l.physical_block_size)
            } else {
                String::new()
            },
            if l.thin { ", thin" } else { "" },
            if l.removable { ", removable" } else { "" },
            if l.read_only { ", read-only" } else { "" },
        );
    }
    if let Some(i) = &cfg.iscsi {
        let first = cfg.map.first().map_or(0, |m| m.0);
        let at = listen.unwrap_or(i.listen);
        println!("rscst: iSCSI target {} on {at}", i.target);
        println!("rscst: try: iscsi-inq iscsi://{at}/{}/{first}", i.target);
    }
    // Scripts wait for the lines above.
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// In rtc mode the portal loop spins only while its passes bring at most this many new
/// commands each (see `NetConfig::spin_max_batch`).
const RTC_SPIN_MAX_BATCH: u32 = 2;

/// `rscst run --coalesce`'s default (rtc mode; see `NetConfig::coalesce`): measured on
/// 4 KiB reads at QD 32 (docs/design/iscsi-path-cost.md).
const RTC_COALESCE_MICROS: u64 = 30;

fn portal_config(
    cfg: &Config,
    spin: Option<Duration>,
    spin_max_batch: u32,
    coalesce: Duration,
) -> Option<(NetConfig, PortalConfig)> {
    let i = cfg.iscsi.as_ref()?;
    let d = NetConfig::default();
    let net = NetConfig {
        listen: i.listen,
        spin: spin.unwrap_or(d.spin),
        spin_max_batch,
        coalesce,
        ..d
    };
    let portal = PortalConfig {
        targets: vec![TargetConfig {
            name: i.target.clone(),
            alias: Some("rscst".to_owned()),
            chap: i.chap.as_ref().map(|c| rscst_sim::iscsi::chap::ChapConfig {
                initiator: rscst_sim::iscsi::chap::ChapCredentials {
                    name: c.user.clone(),
                    secret: c.secret.clone().into_bytes(),
                },
                target: i
                    .mutual_chap
                    .as_ref()
                    .map(|m| rscst_sim::iscsi::chap::ChapCredentials {
                        name: m.user.clone(),
                        secret: m.secret.clone().into_bytes(),
                    }),
            }),
            allowed_initiators: i.allowed_initiators.clone(),
        }],
        // No NOP-In pings: an initiator that sleeps in a synchronous call (libiscsi's
        // test tool sleeps 60 s waiting for a SANITIZE) cannot answer one, and a dropped
        // connection would come back as a new nexus with a new unit attention. Dead
        // peers are still noticed by TCP.
        nop_in_interval: None,
        ..PortalConfig::default()
    };
    Some((net, portal))
}

fn gateway_config() -> GatewayConfig {
    GatewayConfig {
        max_ports: stack::SESSIONS,
        ..GatewayConfig::default()
    }
}

/// The simulator settings of a real-time run: no modelled latencies, no trace, IOMMU
/// faults logged rather than fatal.
fn sim_config() -> SimConfig {
    let mut s = SimConfig::threaded();
    s.fail_on_iommu_fault = false;
    s
}

/// Called once when the target stops.
type StopHook = Box<dyn Fn() + Send>;

/// A stop request (Ctrl-C, SIGTERM, `--duration`), shared with the loops.
#[derive(Clone, Default)]
struct Stop {
    flag: Arc<AtomicBool>,
    hooks: Arc<Mutex<Vec<StopHook>>>,
}

impl Stop {
    fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Ok(h) = self.hooks.lock() {
            for f in h.iter() {
                f();
            }
        }
    }
    fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    fn on_stop(&self, f: impl Fn() + Send + 'static) {
        if let Ok(mut h) = self.hooks.lock() {
            h.push(Box::new(f));
        }
        if self.stopped() {
            self.stop();
        }
    }
}

/// Runs `rscst run`.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let cfg = resolve(args)?;
    let stats = (args.stats > 0.0).then(|| Duration::from_secs_f64(args.stats));
    let stop = Stop::default();
    {
        let s = stop.clone();
        ctrlc::set_handler(move || s.stop())
            .map_err(|e| CliError(format!("cannot install the Ctrl-C handler: {e}")))?;
    }
    if let Some(d) = args.duration {
        let s = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(d));
            s.stop();
        });
    }
    match cfg.mode {
        Mode::Rtc => run_rtc(
            &cfg,
            stats,
            Duration::from_micros(args.spin.unwrap_or(50)),
            Duration::from_micros(args.coalesce.unwrap_or(RTC_COALESCE_MICROS)),
            &stop,
        ),
        Mode::Threaded => run_threaded(&cfg, stats, args.spin.map(Duration::from_micros), &stop),
    }
}

fn bind(
    cfg: &Config,
    spin: Option<Duration>,
    spin_max_batch: u32,
    coalesce: Duration,
) -> Result<Option<Server>, CliError> {
    let Some((net, portal)) = portal_config(cfg, spin, spin_max_batch, coalesce) else {
        return Ok(None);
    };
    let listen = net.listen;
    Server::bind(net, portal)
        .map(Some)
        .map_err(|e| CliError(format!("iSCSI door {listen}: {e}")))
}

fn run_rtc(
    cfg: &Config,
    stats: Option<Duration>,
    spin: Duration,
    coalesce: Duration,
    stop: &Stop,
) -> Result<(), CliError> {
    let clock = Clock::start();
    let parts = stack::build(cfg, sim_config()).map_err(CliError)?;
    let mut st = RtcStack::new(parts, gateway_config(), clock, stats);
    st.bring_up(Duration::from_secs(30)).map_err(CliError)?;
    let server = bind(cfg, Some(spin), RTC_SPIN_MAX_BATCH, coalesce)?;
    banner(
        cfg,
        st.parts.sim.hba_port_id(),
        server.as_ref().map(|s| s.local_addr()),
    );
    match server {
        Some(mut server) => {
            let h = server.stop_handle();
            stop.on_stop(move || h.stop());
            server
                .run(&mut st)
                .map_err(|e| CliError(format!("iSCSI door: {e}")))?;
            println!("rscst: iSCSI sockets: {}", server.net_stats());
            // Let the LOGOs of the closed sessions finish.
            let end = clock.elapsed() + Duration::from_millis(200);
            while clock.elapsed() < end && st.gw.stats().sessions > 0 {
                st.run(&mut stack::NoPortal);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        None => {
            while !stop.stopped() {
                st.run(&mut stack::NoPortal);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    println!("rscst: stopped; {}", st.gw.stats());
    Ok(())
}

/// Spin this long after the last work before sleeping on the interrupt line.
const SPIN: Duration = Duration::from_micros(50);

fn run_threaded(
    cfg: &Config,
    stats: Option<Duration>,
    spin: Option<Duration>,
    stop: &Stop,
) -> Result<(), CliError> {
    let snap = Arc::new(Mutex::new(Snapshot::default()));
    let (tx, rx) = mpsc::channel::<Result<(Arc<SimThread>, Option<rscst_fw::PortId>), String>>();
    // The driver + core poller. The stack is built on its own thread: the core's
    // storage is borrowed for the life of the process and never crosses threads.
    let driver = {
        let cfg = cfg.clone();
        let stop = stop.clone();
        let snap = Arc::clone(&snap);
        std::thread::Builder::new()
            .name("rscst-driver".into())
            .spawn(move || {
                let clock = Clock::start();
                let Parts {
                    sim,
                    mut isp,
                    mut target,
                    mut backend,
                } = match stack::build(&cfg, sim_config()) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let sim = Arc::new(sim.spawn());
                let up_by = clock.elapsed() + Duration::from_secs(30);
                let mut reported = false;
                let mut last_work = std::time::Instant::now();
                let mut published = std::time::Instant::now();
                while !stop.stopped() {
                    let now = clock.now();
                    let busy =
                        isp.poll_stack(now, &mut target, &mut backend) == rscst_qla::Progress::Busy;
                    stack::log_events(&mut isp);
                    if !reported {
                        if isp.is_online() && isp.link_up() {
                            let pid = sim.with(|s| s.hba_port_id());
                            if pid.is_some() {
                                reported = true;
                                let _ = tx.send(Ok((Arc::clone(&sim), pid)));
                            }
                        } else if clock.elapsed() > up_by {
                            let _ = tx.send(Err(format!(
                                "the port did not come up within 30 s: {:?}",
                                isp.phase()
                            )));
                            return;
                        }
                    }
                    if published.elapsed() >= Duration::from_millis(100) {
                        published = std::time::Instant::now();
                        if let Ok(mut s) = snap.lock() {
                            *s = Snapshot::of(&isp);
                        }
                    }
                    if busy {
                        last_work = std::time::Instant::now();
                        continue;
                    }
                    if last_work.elapsed() < SPIN {
                        std::hint::spin_loop();
                        continue;
                    }
                    let dl = isp
                        .poll_at_stack(now, &target)
                        .map_or(Duration::from_millis(100), |t| {
                            Duration::from_nanos(t.as_nanos().saturating_sub(now.as_nanos()))
                        })
                        .min(Duration::from_millis(100));
                    isp.wait_for_work(Some(dl));
                }
                drop(sim);
            })
            .map_err(|e| CliError(format!("cannot start the driver thread: {e}")))?
    };
    let (sim, pid) = match rx.recv() {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            stop.stop();
            let _ = driver.join();
            return Err(CliError(e));
        }
        Err(_) => return Err(CliError("the driver thread ended".into())),
    };
    let server = match bind(cfg, spin, 0, Duration::ZERO) {
        Ok(s) => s,
        Err(e) => {
            stop.stop();
            let _ = driver.join();
            return Err(e);
        }
    };
    banner(cfg, pid, server.as_ref().map(|s| s.local_addr()));
    let mut portal = None;
    let mut gw_stats = None;
    if let Some(mut server) = server {
        let mut gw = ThreadedGateway::new(Arc::clone(&sim), gateway_config(), server.waker());
        gw_stats = Some(gw.stats_handle());
        let h = server.stop_handle();
        stop.on_stop(move || h.stop());
        portal = Some(
            std::thread::Builder::new()
                .name("rscst-iscsi".into())
                .spawn(move || server.run(&mut gw))
                .map_err(|e| CliError(format!("cannot start the portal thread: {e}")))?,
        );
    }
    let clock = Clock::start();
    let mut line = StatsLine::new(stats);
    while !stop.stopped() {
        std::thread::sleep(Duration::from_millis(50));
        let s = snap.lock().map(|s| *s).unwrap_or_default();
        line.tick(clock.elapsed(), s);
    }
    if let Some(p) = portal {
        match p.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("rscst: iSCSI door: {e}"),
            Err(_) => eprintln!("rscst: the portal thread panicked"),
        }
    }
    // Let the LOGOs of the closed sessions reach the target.
    std::thread::sleep(Duration::from_millis(100));
    if let Some(f) = gw_stats {
        println!("rscst: stopped; {}", f());
    }
    let _ = driver.join();
    drop(sim);
    Ok(())
}
