//! `rscst run --config FILE`: the TOML configuration and its validation.
//!
//! ```toml
//! mode = "rtc"                        # or "threaded"
//!
//! [iscsi]                             # the iSCSI door (the simulator's gateway)
//! listen = "127.0.0.1:3260"
//! target = "iqn.2025-01.org.rscst:sim"
//! allowed_initiators = ["iqn.1994-05.com.redhat:host1"]   # optional; all by default
//! chap_user = "host1"                 # optional CHAP (and mutual_chap_user/_secret)
//! chap_secret = "a-secret-of-12+chars"
//!
//! [[port]]                            # the simulated FC HBA port (one)
//! wwpn = "21:00:00:24:ff:7f:00:01"
//!
//! [[lu]]
//! name = "ram0"
//! backend = "ram"                     # ram | null | file
//! size = "1GiB"
//! block_size = 512                  # logical block size
//! physical_block_size = 4096          # default: 4096, or block_size if larger
//! thin = true
//! removable = true
//!
//! [[lu]]
//! name = "disk"
//! backend = "file"
//! path = "/var/tmp/disk.img"          # created (sparse) at `size` if missing
//! size = "4GiB"
//!
//! [map]                               # LUN map of initiators in no group
//! 0 = "ram0"
//! 1 = "disk"
//!
//! [[group]]                           # LUN masking by initiator port name (WWPN)
//! name = "backup"
//! initiators = ["21:00:00:24:ff:10:00:00"]
//! read_only = true
//! map = { 0 = "disk" }
//! ```
//!
//! Every error is one line naming the field (`lu[1].size: ...`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The default iSCSI target name.
pub const DEFAULT_TARGET: &str = "iqn.2025-01.org.rscst:sim";
/// The simulated HBA's default WWPN.
pub const DEFAULT_WWPN: u64 = 0x2100_0024_ff7f_0001;
/// The default RAM LU size: 1 GiB.
pub const DEFAULT_SIZE: u64 = 1 << 30;
/// Logical units at most.
pub const MAX_LUS: usize = 16;

/// A configuration error: the field and what is wrong, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, e.g. `lu[0].size`, or `FILE:LINE` for syntax errors.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        field: field.into(),
        message: message.into(),
    })
}

/// How the target's parts are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One thread: iSCSI sockets, gateway, simulated card, driver and core in one poll
    /// loop (the default: measured faster on small machines, see README).
    #[default]
    Rtc,
    /// Threads as on real hardware: the card's firmware model, the driver + core poller
    /// and the iSCSI portal each on their own.
    Threaded,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "rtc" | "run-to-completion" => Ok(Mode::Rtc),
            "threaded" => Ok(Mode::Threaded),
            _ => Err(format!("{s:?} is not a mode (rtc, threaded)")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Rtc => "rtc",
            Mode::Threaded => "threaded",
        })
    }
}

/// The storage of a logical unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// Host memory the simulated card reaches by DMA (zero copy).
    Ram,
    /// Reads zeros, discards writes.
    Null,
    /// A file or block device (pread/pwrite through the core's buffer pool).
    File(PathBuf),
}

/// One logical unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuSpec {
    /// Name used by maps.
    pub name: String,
    /// Storage.
    pub backend: BackendKind,
    /// Bytes (a multiple of `block_size`).
    pub size: u64,
    /// Logical block size.
    pub block_size: u32,
    /// Physical block size in bytes: `block_size` times a power of two (at most
    /// 2^15), reported as LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT in READ
    /// CAPACITY(16) and as the OPTIMAL TRANSFER LENGTH GRANULARITY of VPD page B0h.
    pub physical_block_size: u32,
    /// Thin provisioned (UNMAP, GET LBA STATUS).
    pub thin: bool,
    /// Removable medium (START STOP UNIT LOEJ, PREVENT ALLOW MEDIUM REMOVAL).
    pub removable: bool,
    /// Write protected.
    pub read_only: bool,
    /// Volatile write cache enabled.
    pub write_cache: bool,
    /// SANITIZE / FORMAT UNIT pace in bytes per second (0: unpaced).
    pub background_rate: u64,
    /// Unit serial number (VPD 80h); derived from the name when empty.
    pub serial: String,
}

/// An initiator group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Name (for messages).
    pub name: String,
    /// Initiator port names (WWPNs).
    pub initiators: Vec<u64>,
    /// LUN → LU index.
    pub map: Vec<(u16, usize)>,
    /// The group's maps are read-only.
    pub read_only: bool,
}

/// CHAP credentials: a name and a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Chap {
    /// CHAP_N.
    pub user: String,
    /// The shared secret.
    pub secret: String,
}

impl fmt::Debug for Chap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chap({}, <secret>)", self.user)
    }
}

/// The iSCSI door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiSpec {
    /// Listen address.
    pub listen: SocketAddr,
    /// Target name.
    pub target: String,
    /// Initiator names allowed to log in (`None`: all).
    pub allowed_initiators: Option<Vec<String>>,
    /// CHAP the initiators must pass (`None`: no authentication).
    pub chap: Option<Chap>,
    /// The target's own CHAP credentials for mutual CHAP.
    pub mutual_chap: Option<Chap>,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Scheduling.
    pub mode: Mode,
    /// The iSCSI door (`None`: no portal; the FC side only).
    pub iscsi: Option<IscsiSpec>,
    /// The HBA port's WWPN.
    pub wwpn: u64,
    /// The HBA's WWNN.
    pub wwnn: u64,
    /// Logical units.
    pub lus: Vec<LuSpec>,
    /// LUN map of initiators in no group: LUN → LU index.
    pub map: Vec<(u16, usize)>,
    /// Initiator groups.
    pub groups: Vec<GroupSpec>,
}

impl Default for Config {
    /// What `rscst run` does with no arguments: one simulated port, one 1 GiB thin,
    /// removable RAM LU at LUN 0, the iSCSI door on 127.0.0.1:3260.
    fn default() -> Self {
        Config {
            mode: Mode::default(),
            iscsi: Some(IscsiSpec {
                listen: SocketAddr::from(([127, 0, 0, 1], 3260)),
                target: DEFAULT_TARGET.to_owned(),
                allowed_initiators: None,
                chap: None,
                mutual_chap: None,
            }),
            wwpn: DEFAULT_WWPN,
            wwnn: wwnn_of(DEFAULT_WWPN),
            lus: vec![default_lu("ram0", DEFAULT_SIZE)],
            map: vec![(0, 0)],
            groups: Vec::new(),
        }
    }
}

fn wwnn_of(wwpn: u64) -> u64 {
    // IEEE extended form (NAA 2): the node name is the port name with the
    // vendor-specific port nibble cleared, 21:00:... → 20:00:... as QLogic cards do.
    if wwpn >> 60 == 2 {
        wwpn & !0x0F00_0000_0000_0000
    } else {
        wwpn
    }
}

/// The default pace of SANITIZE and FORMAT UNIT: 160 MiB/s, so that a SANITIZE of the
/// default 1 GiB LU runs for about 6 s — long enough for libiscsi's Sanitize.Reset to see
/// it in progress 4-5 s after it started (and across resets and a new login).
pub const DEFAULT_BACKGROUND_RATE: u64 = 160 << 20;

/// The default physical block size: 4096 bytes, as on the "512e" and 4Kn disks and
/// flash an FC array serves (and the RAM LU's 8-block unmap granule).
pub const DEFAULT_PHYSICAL_BLOCK_SIZE: u32 = 4096;

/// The default LU: RAM, thin, removable, 512-byte logical blocks in 4096-byte physical
/// blocks (what the libiscsi suite needs: thin provisioning for UNMAP / GET LBA STATUS,
/// a removable medium for NoMedia, PreventAllow and StartStopUnit, a paced SANITIZE so
/// its progress can be seen, and LOGICAL BLOCKS PER PHYSICAL BLOCK >= 2 for its
/// unaligned COMPARE AND WRITE and WRITE SAME tests).
pub fn default_lu(name: &str, size: u64) -> LuSpec {
    LuSpec {
        name: name.to_owned(),
        backend: BackendKind::Ram,
        size,
        block_size: 512,
        physical_block_size: DEFAULT_PHYSICAL_BLOCK_SIZE,
        thin: true,
        removable: true,
        read_only: false,
        write_cache: true,
        background_rate: DEFAULT_BACKGROUND_RATE,
        serial: String::new(),
    }
}

impl LuSpec {
    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT: log2(physical / logical block size).
    pub fn physical_block_exponent(&self) -> u8 {
        let ratio = (self.physical_block_size / self.block_size.max(1)).max(1);
        ratio.trailing_zeros() as u8
    }
}

/// Checks a physical block size against the logical one: a power-of-two multiple of
/// it, at most 2^15 logical blocks (the 4-bit exponent of READ CAPACITY(16)).
pub fn check_physical_block_size(physical: u32, logical: u32) -> Result<(), String> {
    let max = u64::from(logical) << rscst_core::PHYSICAL_EXPONENT_MAX;
    if physical < logical
        || !physical.is_multiple_of(logical)
        || !(physical / logical).is_power_of_two()
    {
        return Err(format!(
            "{physical} is not the block size {logical} times a power of two"
        ));
    }
    if u64::from(physical) > max {
        return Err(format!(
            "{physical} is more than 2^{} blocks of {logical} bytes",
            rscst_core::PHYSICAL_EXPONENT_MAX
        ));
    }
    Ok(())
}

/// Parses a size: bytes, or a number with K/M/G/T (powers of 1024; `KiB` and `KB` alike).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 4096, 512MiB, 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown unit (K, M, G, T)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a WWN: 16 hex digits, with or without `:` separators, or `0x…`.
pub fn parse_wwn(s: &str) -> Result<u64, String> {
    let hex: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|&c| c != ':' && c != '-')
        .collect();
    if hex.len() != 16 {
        return Err(format!("{s:?} is not a WWN (16 hex digits)"));
    }
    u64::from_str_radix(&hex, 16).map_err(|_| format!("{s:?} is not a WWN (16 hex digits)"))
}

// ---------------------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    mode: Option<String>,
    iscsi: Option<IscsiFile>,
    #[serde(default)]
    port: Vec<PortFile>,
    #[serde(default)]
    lu: Vec<LuFile>,
    map: Option<BTreeMap<String, String>>,
    #[serde(default)]
    group: Vec<GroupFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IscsiFile {
    enabled: Option<bool>,
    listen: Option<String>,
    target: Option<String>,
    allowed_initiators: Option<Vec<String>>,
    chap_user: Option<String>,
    chap_secret: Option<String>,
    mutual_chap_user: Option<String>,
    mutual_chap_secret: Option<String>,
}

fn chap(
    user: Option<String>,
    secret: Option<String>,
    base: &str,
) -> Result<Option<Chap>, ConfigError> {
    match (user, secret) {
        (None, None) => Ok(None),
        (Some(_), None) => err(format!("{base}_secret"), "a CHAP user needs a secret"),
        (None, Some(_)) => err(format!("{base}_user"), "a CHAP secret needs a user"),
        (Some(u), Some(s)) => {
            if u.is_empty() || u.len() > 255 {
                return err(format!("{base}_user"), "1 to 255 characters");
            }
            if !(12..=255).contains(&s.len()) {
                return err(
                    format!("{base}_secret"),
                    "12 to 255 characters (RFC 7143 §12.1.3 asks for at least 12)",
                );
            }
            Ok(Some(Chap { user: u, secret: s }))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortFile {
    wwpn: Option<String>,
    wwnn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeFile {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LuFile {
    name: Option<String>,
    backend: Option<String>,
    size: Option<SizeFile>,
    block_size: Option<u32>,
    physical_block_size: Option<u32>,
    path: Option<PathBuf>,
    thin: Option<bool>,
    removable: Option<bool>,
    read_only: Option<bool>,
    write_cache: Option<bool>,
    background_rate: Option<SizeFile>,
    serial: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    name: Option<String>,
    #[serde(default)]
    initiators: Vec<String>,
    #[serde(default)]
    map: BTreeMap<String, String>,
    #[serde(default)]
    read_only: bool,
}

fn size_of(v: &SizeFile, field: &str) -> Result<u64, ConfigError> {
    match v {
        SizeFile::Bytes(n) => Ok(*n),
        SizeFile::Text(s) => parse_size(s).or_else(|m| err(field, m)),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads and validates a configuration file.
pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .or_else(|e| err(path.display().to_string(), e.to_string()))?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates configuration text; `origin` names it in syntax errors.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!("{origin}:{line}")
            })
            .unwrap_or_else(|| origin.to_owned());
        ConfigError {
            field: at,
            message: one_line(e.message()),
        }
    })?;
    validate(file)
}

fn validate(f: File) -> Result<Config, ConfigError> {
    let mut c = Config::default();
    if let Some(m) = &f.mode {
        c.mode = m.parse().or_else(|e| err("mode", e))?;
    }
    if let Some(i) = f.iscsi {
        if i.enabled == Some(false) {
            c.iscsi = None;
        } else {
            let mut spec = c.iscsi.take().unwrap_or(IscsiSpec {
                listen: SocketAddr::from(([127, 0, 0, 1], 3260)),
                target: DEFAULT_TARGET.to_owned(),
                allowed_initiators: None,
                chap: None,
                mutual_chap: None,
            });
            if let Some(l) = &i.listen {
                spec.listen = rscst_sim::iscsi::net::parse_listen(l)
                    .or_else(|e| err("iscsi.listen", format!("{l:?}: {e}")))?;
            }
            if let Some(t) = i.target {
                if !valid_iscsi_name(&t) {
                    return err(
                        "iscsi.target",
                        format!("{t:?} is not an iSCSI name (iqn.…, eui.…, naa.…)"),
                    );
                }
                spec.target = t;
            }
            spec.allowed_initiators = i.allowed_initiators;
            spec.chap = chap(i.chap_user, i.chap_secret, "iscsi.chap")?;
            spec.mutual_chap = chap(
                i.mutual_chap_user,
                i.mutual_chap_secret,
                "iscsi.mutual_chap",
            )?;
            if spec.mutual_chap.is_some() && spec.chap.is_none() {
                return err(
                    "iscsi.mutual_chap_user",
                    "mutual CHAP needs chap_user and chap_secret",
                );
            }
            c.iscsi = Some(spec);
        }
    }
    match f.port.len() {
        0 => {}
        1 => {
            if let Some(w) = &f.port[0].wwpn {
                c.wwpn = parse_wwn(w).or_else(|e| err("port[0].wwpn", e))?;
                c.wwnn = wwnn_of(c.wwpn);
            }
            if let Some(w) = &f.port[0].wwnn {
                c.wwnn = parse_wwn(w).or_else(|e| err("port[0].wwnn", e))?;
            }
        }
        n => {
            return err(
                "port",
                format!("{n} ports given; one simulated port is supported"),
            );
        }
    }
    if !f.lu.is_empty() {
        if f.lu.len() > MAX_LUS {
            return err("lu", format!("{} LUs given; at most {MAX_LUS}", f.lu.len()));
        }
        c.lus = Vec::new();
        for (i, l) in f.lu.iter().enumerate() {
            let field = |k: &str| format!("lu[{i}].{k}");
            let name = l.name.clone().unwrap_or_else(|| format!("lu{i}"));
            if c.lus.iter().any(|o: &LuSpec| o.name == name) {
                return err(field("name"), format!("{name:?} is used twice"));
            }
            let backend = match l.backend.as_deref().unwrap_or("ram") {
                "ram" => BackendKind::Ram,
                "null" => BackendKind::Null,
                "file" => match &l.path {
                    Some(p) => BackendKind::File(p.clone()),
                    None => return err(field("path"), "a file LU needs a path"),
                },
                other => {
                    return err(
                        field("backend"),
                        format!("{other:?} is not a backend (ram, null, file)"),
                    );
                }
            };
            if l.path.is_some() && !matches!(backend, BackendKind::File(_)) {
                return err(field("path"), "only a file LU has a path");
            }
            let block_size = l.block_size.unwrap_or(512);
            if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
                return err(
                    field("block_size"),
                    format!("{block_size} is not a power of two in 512..=65536"),
                );
            }
            let physical_block_size = l
                .physical_block_size
                .unwrap_or(DEFAULT_PHYSICAL_BLOCK_SIZE.max(block_size));
            check_physical_block_size(physical_block_size, block_size)
                .or_else(|m| err(field("physical_block_size"), m))?;
            let size = match &l.size {
                Some(s) => size_of(s, &field("size"))?,
                None if matches!(backend, BackendKind::File(_)) => 0,
                None => DEFAULT_SIZE,
            };
            if size % u64::from(block_size) != 0 {
                return err(
                    field("size"),
                    format!("{size} is not a multiple of the block size {block_size}"),
                );
            }
            if size == 0 && !matches!(backend, BackendKind::File(_)) {
                return err(field("size"), "must not be 0");
            }
            if backend == BackendKind::Ram && size > (64 << 30) {
                return err(field("size"), "a RAM LU is at most 64 GiB");
            }
            let background_rate = match &l.background_rate {
                Some(s) => size_of(s, &field("background_rate"))?,
                None => DEFAULT_BACKGROUND_RATE,
            };
            let serial = l.serial.clone().unwrap_or_default();
            if serial.len() > rscst_core::SERIAL_MAX
                || !serial.bytes().all(|b| (0x20..0x7f).contains(&b))
            {
                return err(
                    field("serial"),
                    format!("printable ASCII, at most {} bytes", rscst_core::SERIAL_MAX),
                );
            }
            c.lus.push(LuSpec {
                name,
                backend,
                size,
                block_size,
                physical_block_size,
                thin: l.thin.unwrap_or(true),
                removable: l.removable.unwrap_or(true),
                read_only: l.read_only.unwrap_or(false),
                write_cache: l.write_cache.unwrap_or(true),
                background_rate,
                serial,
            });
        }
        // Without a map, the LUs appear at LUN 0, 1, ... in order.
        c.map = (0..c.lus.len()).map(|i| (i as u16, i)).collect();
    }
    let lu_index = |name: &str, field: &str, lus: &[LuSpec]| -> Result<usize, ConfigError> {
        lus.iter()
            .position(|l| l.name == name)
            .map_or_else(|| err(field, format!("no LU named {name:?}")), Ok)
    };
    let parse_map = |m: &BTreeMap<String, String>,
                     base: &str,
                     lus: &[LuSpec]|
     -> Result<Vec<(u16, usize)>, ConfigError> {
        let mut out = Vec::new();
        for (k, v) in m {
            let field = format!("{base}.{k}");
            let lun: u16 = match k.parse() {
                Ok(n) if n < 16384 => n,
                _ => return err(field, format!("{k:?} is not a LUN (0..16383)")),
            };
            out.push((lun, lu_index(v, &field, lus)?));
        }
        Ok(out)
    };
    if let Some(m) = &f.map {
        c.map = parse_map(m, "map", &c.lus)?;
    }
    for (i, g) in f.group.iter().enumerate() {
        let base = format!("group[{i}]");
        let mut initiators = Vec::new();
        for (j, w) in g.initiators.iter().enumerate() {
            initiators.push(parse_wwn(w).or_else(|e| err(format!("{base}.initiators[{j}]"), e))?);
        }
        c.groups.push(GroupSpec {
            name: g.name.clone().unwrap_or_else(|| format!("group{i}")),
            initiators,
            map: parse_map(&g.map, &format!("{base}.map"), &c.lus)?,
            read_only: g.read_only,
        });
    }
    if c.groups.len() > rscst_core::MAX_GROUPS - 1 {
        return err(
            "group",
            format!("at most {} groups", rscst_core::MAX_GROUPS - 1),
        );
    }
    Ok(c)
}

fn valid_iscsi_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 223
        && (n.starts_with("iqn.") || n.starts_with("eui.") || n.starts_with("naa."))
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2 kb"), Ok(2048));
        assert!(parse_size("12x").unwrap_err().contains("unit"));
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn wwns() {
        assert_eq!(parse_wwn("21:00:00:24:ff:7f:00:01"), Ok(DEFAULT_WWPN));
        assert_eq!(parse_wwn("0x21000024ff7f0001"), Ok(DEFAULT_WWPN));
        assert!(parse_wwn("21:00").is_err());
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(parse("", "t.toml").unwrap(), Config::default());
    }

    #[test]
    fn an_lu_in_a_file_has_the_defaults_of_the_default_lu() {
        let c = parse("[[lu]]\nname = \"ram0\"\nsize = \"1GiB\"\n", "t.toml").unwrap();
        assert_eq!(c.lus, vec![default_lu("ram0", DEFAULT_SIZE)]);
        assert_eq!(c, Config::default());
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"
            mode = "threaded"
            [iscsi]
            listen = "127.0.0.1:3299"
            target = "iqn.2025-01.org.example:t1"
            [[port]]
            wwpn = "21:00:00:24:ff:00:00:09"
            [[lu]]
            name = "a"
            size = "64MiB"
            [[lu]]
            name = "b"
            backend = "null"
            size = 1048576
            block_size = 4096
            [map]
            0 = "b"
            3 = "a"
            [[group]]
            name = "g"
            initiators = ["21:00:00:24:ff:10:00:00"]
            map = { 0 = "a" }
            read_only = true
            "#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Threaded);
        assert_eq!(c.iscsi.as_ref().unwrap().listen.port(), 3299);
        assert_eq!(c.wwpn, 0x2100_0024_ff00_0009);
        assert_eq!(c.lus.len(), 2);
        assert_eq!(c.lus[1].backend, BackendKind::Null);
        assert_eq!(c.lus[1].block_size, 4096);
        assert_eq!(c.map, vec![(0, 1), (3, 0)]);
        assert_eq!(c.groups[0].initiators, vec![0x2100_0024_ff10_0000]);
        assert!(c.groups[0].read_only);
    }

    #[test]
    fn physical_block_size() {
        // The default LU: 4096-byte physical blocks of 512-byte logical ones.
        let d = &Config::default().lus[0];
        assert_eq!((d.block_size, d.physical_block_size), (512, 4096));
        assert_eq!(d.physical_block_exponent(), 3);
        let lu = |text: &str| parse(&format!("[[lu]]\n{text}"), "t.toml").unwrap().lus[0].clone();
        // Default in a file: 4096, or the logical block size if that is larger.
        let l = lu("block_size = 4096");
        assert_eq!(
            (l.physical_block_size, l.physical_block_exponent()),
            (4096, 0)
        );
        let l = lu("block_size = 16384");
        assert_eq!(
            (l.physical_block_size, l.physical_block_exponent()),
            (16384, 0)
        );
        let l = lu("block_size = 1024");
        assert_eq!(
            (l.physical_block_size, l.physical_block_exponent()),
            (4096, 2)
        );
        // Given: any power-of-two multiple up to 2^15 logical blocks.
        let l = lu("physical_block_size = 512");
        assert_eq!(l.physical_block_exponent(), 0);
        let l = lu("physical_block_size = 65536");
        assert_eq!(l.physical_block_exponent(), 7);
        let l = lu("physical_block_size = 16777216");
        assert_eq!(l.physical_block_exponent(), 15);
        let l = lu("block_size = 4096\nphysical_block_size = 32768");
        assert_eq!(l.physical_block_exponent(), 3);
    }

    #[test]
    fn bad_physical_block_sizes() {
        for (text, needle) in [
            ("physical_block_size = 256", "512 times a power of two"),
            ("physical_block_size = 1000", "512 times a power of two"),
            ("physical_block_size = 6144", "512 times a power of two"),
            ("physical_block_size = 0", "512 times a power of two"),
            ("physical_block_size = 33554432", "2^15"),
            (
                "block_size = 4096\nphysical_block_size = 2048",
                "4096 times",
            ),
        ] {
            let s = bad(&format!("[[lu]]\n{text}"), "lu[0].physical_block_size");
            assert!(s.contains(needle), "{text}: {s}");
        }
        bad("[[lu]]\nphysical_block_size = \"4k\"", "t.toml:2");
    }

    #[track_caller]
    fn bad(text: &str, field: &str) -> String {
        let e = parse(text, "t.toml").unwrap_err();
        assert_eq!(e.field, field, "{e}");
        let s = e.to_string();
        assert!(!s.contains('\n'), "one line: {s}");
        s
    }

    #[test]
    fn errors_name_the_field() {
        bad("[[lu]]\nsize = \"12x\"", "lu[0].size");
        bad("[[lu]]\nsize = 1000", "lu[0].size");
        bad("[[lu]]\nblock_size = 1000", "lu[0].block_size");
        bad("[[lu]]\nbackend = \"tape\"", "lu[0].backend");
        bad("[[lu]]\nbackend = \"file\"", "lu[0].path");
        bad("[[lu]]\nname = \"a\"\n[[lu]]\nname = \"a\"", "lu[1].name");
        bad("[map]\n0 = \"nope\"", "map.0");
        bad("[map]\nx = \"ram0\"", "map.x");
        bad("mode = \"fast\"", "mode");
        bad("[iscsi]\ntarget = \"bad name\"", "iscsi.target");
        bad("[iscsi]\nlisten = \"nowhere:xx\"", "iscsi.listen");
        bad("[[port]]\nwwpn = \"12\"", "port[0].wwpn");
        bad("[[port]]\n[[port]]", "port");
        bad("[[group]]\ninitiators = [\"x\"]", "group[0].initiators[0]");
        bad("[iscsi]\nchap_user = \"u\"", "iscsi.chap_secret");
        bad(
            "[iscsi]\nchap_user = \"u\"\nchap_secret = \"short\"",
            "iscsi.chap_secret",
        );
        bad(
            "[iscsi]\nmutual_chap_user = \"t\"\nmutual_chap_secret = \"0123456789abc\"",
            "iscsi.mutual_chap_user",
        );
        let s = bad("\n\n[[lu]]\nsise = 1", "t.toml:4");
        assert!(s.contains("sise"), "{s}");
        bad("mode = ", "t.toml:1");
    }
}
