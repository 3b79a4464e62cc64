//! PCI identity of the FWI2 ISPs and the per-generation facts a driver picks at probe time.
//!
//! Source: reference §1 (PCI ids, BAR usage), §2.4 (flash/NVRAM windows), §3.5, §5, §6.3
//! (default ring lengths), §5.4 (Linux target-mode option defaults). One binary serves every
//! card: the driver calls [`probe`] with the PCI ids and keeps the returned
//! `&'static ChipInfo` (and its `&'static GenInfo`) instead of compiling variants in.

use core::fmt;

/// QLogic's PCI vendor id.
pub const QLOGIC_VENDOR_ID: u16 = 0x1077;

/// Where the firmware image starts in RISC memory on every FWI2 chip (`RISC_START_ADDRESS_2400`).
pub const RISC_START_ADDRESS: u32 = 0x0010_0000;

/// The driver maps (and requires) this much of the register BAR (`MIN_IOBASE_LEN`). The real
/// BAR may be larger (unconfirmed); nothing in this crate needs more.
pub const MIN_REGISTER_BAR_LEN: u32 = 0x100;

/// Size of one multi-queue register page in the MQ BAR (page index = queue id).
pub const MQ_PAGE_SIZE: u32 = 0x1000;

/// An ISP generation ("family") as the Linux driver groups the chips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Generation {
    /// ISP2422/2432, and the 24xx-type 8432 and 5422/5432.
    Isp24xx,
    /// ISP2532 (8 Gb/s).
    Isp25xx,
    /// ISP8001 CNA.
    Isp81xx,
    /// ISP2031 / ISP8031 (16 Gb/s).
    Isp83xx,
    /// ISP2071/2271/2261 (32 Gb/s).
    Isp27xx,
    /// ISP2081/2089/2281/2289 (64 Gb/s).
    Isp28xx,
}

impl Generation {
    /// The family name, e.g. `"ISP25xx"`.
    pub const fn name(self) -> &'static str {
        match self {
            Generation::Isp24xx => "ISP24xx",
            Generation::Isp25xx => "ISP25xx",
            Generation::Isp81xx => "ISP81xx",
            Generation::Isp83xx => "ISP83xx",
            Generation::Isp27xx => "ISP27xx",
            Generation::Isp28xx => "ISP28xx",
        }
    }

    /// The facts of this generation.
    pub const fn info(self) -> &'static GenInfo {
        match self {
            Generation::Isp24xx => &GEN_24XX,
            Generation::Isp25xx => &GEN_25XX,
            Generation::Isp81xx => &GEN_81XX,
            Generation::Isp83xx => &GEN_83XX,
            Generation::Isp27xx => &GEN_27XX,
            Generation::Isp28xx => &GEN_28XX,
        }
    }

    /// `true` for 83xx, 27xx and 28xx: the "MQ chips" of the reference.
    pub const fn is_mq_chip(self) -> bool {
        matches!(
            self,
            Generation::Isp83xx | Generation::Isp27xx | Generation::Isp28xx
        )
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which init-control-block layout the firmware expects (reference §5.1/§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IcbVariant {
    /// `init_cb_24xx`: 24xx and 25xx.
    Isp24xx,
    /// `init_cb_81xx`: 81xx, 83xx, 27xx, 28xx.
    Isp81xx,
}

/// Facts shared by every chip of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GenInfo {
    /// The generation these facts describe.
    pub generation: Generation,
    /// PCI BAR (region) index of the `device_reg_24xx` register block (memory-mapped).
    pub reg_bar: u8,
    /// PCI BAR index of the multi-queue register pages.
    pub mq_bar: u8,
    /// `true` if the MQ BAR is always used, even for queue 0 (83xx and later); otherwise it
    /// is used only when the firmware reports multiqueue (attributes B6) and MQ is enabled.
    pub mq_bar_mandatory: bool,
    /// PCI BAR index of the MSI-X table, where the reference names one.
    pub msix_bar: Option<u8>,
    /// The init-control-block layout.
    pub icb: IcbVariant,
    /// Linux's request-ring length in entries.
    pub request_q_len: u16,
    /// Linux's response-ring length in entries.
    pub response_q_len: u16,
    /// Linux's ATIO-ring length in entries.
    pub atio_q_len: u16,
    /// `true` if the queue-0 and ATIO in/out pointers are always in MQ page 0 rather than in
    /// the 24xx register block (gotcha 15). Older chips use the MQ page only with MQ enabled.
    pub queue_ptrs_in_mq_page: bool,
    /// `true` if the firmware can shadow the request-out / response-in indexes in host memory
    /// (ICB firmware options 2 B29/B30), in the extra slot after each ring.
    pub shadow_indexes: bool,
    /// `true` if Linux moves ABTS_RECV/PUREX to the ATIO queue by default in target mode
    /// (SET_FIRMWARE_OPTION word 2 B11).
    pub abts_on_atio_queue: bool,
    /// `true` if Linux asks the firmware to police stale exchange addresses in target mode
    /// (SET_FIRMWARE_OPTION word 2 B4).
    pub exchange_tracking: bool,
    /// `true` if Linux forces the connection option to point-to-point for target mode
    /// (ICB firmware options 2 B4–B6 = 1).
    pub target_forces_p2p: bool,
    /// Dword address of the flash data window through `flash_addr`/`flash_data`.
    pub flash_data_base: u32,
    /// Dword address of the NVRAM data window, or `None` when NVRAM lives in flash regions.
    pub nvram_data_base: Option<u32>,
}

/// Dword address of the flash configuration window (all FWI2 chips).
pub const FLASH_CONF_BASE: u32 = 0x7FFD_0000;
/// Dword address of the NVRAM configuration window (24xx/25xx).
pub const NVRAM_CONF_BASE: u32 = 0x7FFF_0000;
/// NVRAM dword address of function 0's `nvram_24xx` image (function 1: 0x180).
pub const NVRAM_FUNC0_ADDR: u32 = 0x80;
/// NVRAM dword address of function 1's `nvram_24xx` image.
pub const NVRAM_FUNC1_ADDR: u32 = 0x180;

const fn gen_old(
    generation: Generation,
    tracking: bool,
    p2p: bool,
    flash: u32,
    nvram: Option<u32>,
) -> GenInfo {
    GenInfo {
        generation,
        reg_bar: 1,
        mq_bar: 3,
        mq_bar_mandatory: false,
        msix_bar: None,
        icb: if matches!(generation, Generation::Isp81xx) {
            IcbVariant::Isp81xx
        } else {
            IcbVariant::Isp24xx
        },
        request_q_len: 2048,
        response_q_len: 512,
        atio_q_len: 4096,
        queue_ptrs_in_mq_page: false,
        shadow_indexes: false,
        abts_on_atio_queue: false,
        exchange_tracking: tracking,
        target_forces_p2p: p2p,
        flash_data_base: flash,
        nvram_data_base: nvram,
    }
}

const fn gen_mq(generation: Generation, shadow: bool, flash: u32) -> GenInfo {
    GenInfo {
        generation,
        reg_bar: 0,
        mq_bar: 4,
        mq_bar_mandatory: true,
        msix_bar: Some(2),
        icb: IcbVariant::Isp81xx,
        request_q_len: 8192,
        response_q_len: 4096,
        atio_q_len: 4096,
        queue_ptrs_in_mq_page: true,
        shadow_indexes: shadow,
        abts_on_atio_queue: true,
        exchange_tracking: true,
        target_forces_p2p: false,
        flash_data_base: flash,
        nvram_data_base: None,
    }
}

static GEN_24XX: GenInfo = gen_old(
    Generation::Isp24xx,
    false,
    false,
    0x7FF0_0000,
    Some(0x7FFE_0000),
);
static GEN_25XX: GenInfo = gen_old(
    Generation::Isp25xx,
    true,
    true,
    0x7FF0_0000,
    Some(0x7FFE_0000),
);
static GEN_81XX: GenInfo = gen_old(Generation::Isp81xx, false, true, 0x7F80_0000, None);
static GEN_83XX: GenInfo = gen_mq(Generation::Isp83xx, false, 0x7F80_0000);
static GEN_27XX: GenInfo = gen_mq(Generation::Isp27xx, true, 0x7F80_0000);
static GEN_28XX: GenInfo = gen_mq(Generation::Isp28xx, true, 0x7F7D_0000);

/// One supported PCI device id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChipInfo {
    /// PCI device id.
    pub device_id: u16,
    /// Chip name, e.g. `"ISP2532"`.
    pub name: &'static str,
    /// The generation's facts.
    pub gen_info: &'static GenInfo,
    /// `true` for converged network adapters (FCoE; 81xx, 8031): extra GET_ADAPTER_ID outputs.
    pub cna: bool,
}

impl ChipInfo {
    /// The generation.
    pub const fn generation(&self) -> Generation {
        self.gen_info.generation
    }
}

const fn chip(device_id: u16, name: &'static str, generation: Generation, cna: bool) -> ChipInfo {
    ChipInfo {
        device_id,
        name,
        gen_info: generation.info(),
        cna,
    }
}

/// Every device id this crate supports (reference §1.1).
pub static CHIPS: &[ChipInfo] = &[
    chip(0x2422, "ISP2422", Generation::Isp24xx, false),
    chip(0x2432, "ISP2432", Generation::Isp24xx, false),
    chip(0x8432, "ISP8432", Generation::Isp24xx, false),
    chip(0x5422, "ISP5422", Generation::Isp24xx, false),
    chip(0x5432, "ISP5432", Generation::Isp24xx, false),
    chip(0x2532, "ISP2532", Generation::Isp25xx, false),
    chip(0x8001, "ISP8001", Generation::Isp81xx, true),
    chip(0x2031, "ISP2031", Generation::Isp83xx, false),
    chip(0x8031, "ISP8031", Generation::Isp83xx, true),
    chip(0x2071, "ISP2071", Generation::Isp27xx, false),
    chip(0x2271, "ISP2271", Generation::Isp27xx, false),
    chip(0x2261, "ISP2261", Generation::Isp27xx, false),
    chip(0x2081, "ISP2081", Generation::Isp28xx, false),
    chip(0x2089, "ISP2089", Generation::Isp28xx, false),
    chip(0x2281, "ISP2281", Generation::Isp28xx, false),
    chip(0x2289, "ISP2289", Generation::Isp28xx, false),
];

/// Why [`probe`] refused a PCI function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProbeError {
    /// Not a QLogic vendor id.
    NotQlogic(u16),
    /// A QLogic device this crate deliberately does not drive; the text says why.
    Unsupported {
        /// The device id.
        device_id: u16,
        /// Why.
        reason: &'static str,
    },
    /// A QLogic device id this crate does not know.
    UnknownDevice(u16),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::NotQlogic(v) => write!(f, "vendor {v:#06x} is not QLogic"),
            ProbeError::Unsupported { device_id, reason } => {
                write!(f, "device {device_id:#06x} not supported: {reason}")
            }
            ProbeError::UnknownDevice(d) => write!(f, "unknown QLogic device {d:#06x}"),
        }
    }
}

impl core::error::Error for ProbeError {}

/// The chip for a QLogic device id, if supported.
pub fn chip_info(device_id: u16) -> Option<&'static ChipInfo> {
    CHIPS.iter().find(|c| c.device_id == device_id)
}

/// Identifies a PCI function: the chip and its generation facts, or why it is refused.
///
/// Refused on purpose: 0x8021/0x8044 (82xx "P3P", a different register block), 0xF001
/// (ISPFx00, a different interface) and 0x2061 (listed in the Linux PCI table with no family
/// flags — unconfirmed, so not claimed).
pub fn probe(vendor_id: u16, device_id: u16) -> Result<&'static ChipInfo, ProbeError> {
    if vendor_id != QLOGIC_VENDOR_ID {
        return Err(ProbeError::NotQlogic(vendor_id));
    }
    if let Some(c) = chip_info(device_id) {
        return Ok(c);
    }
    let reason = match device_id {
        0x8021 | 0x8044 => "ISP82xx (P3P) uses a different register block",
        0xF001 => "ISPFx00 uses a different firmware interface",
        0x2061 => "no family known for this id (unconfirmed)",
        _ => return Err(ProbeError::UnknownDevice(device_id)),
    };
    Err(ProbeError::Unsupported { device_id, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_picks_generation_facts() {
        let c = probe(0x1077, 0x2532).unwrap();
        assert_eq!(c.name, "ISP2532");
        assert_eq!(c.generation(), Generation::Isp25xx);
        let g = c.gen_info;
        assert_eq!((g.reg_bar, g.mq_bar, g.mq_bar_mandatory), (1, 3, false));
        assert_eq!(g.icb, IcbVariant::Isp24xx);
        assert_eq!(
            (g.request_q_len, g.response_q_len, g.atio_q_len),
            (2048, 512, 4096)
        );
        assert!(!g.queue_ptrs_in_mq_page && g.exchange_tracking && g.target_forces_p2p);
        assert_eq!(g.nvram_data_base, Some(0x7FFE_0000));

        let c = probe(0x1077, 0x2031).unwrap();
        let g = c.gen_info;
        assert_eq!((g.reg_bar, g.mq_bar, g.msix_bar), (0, 4, Some(2)));
        assert_eq!((g.request_q_len, g.response_q_len), (8192, 4096));
        assert!(g.queue_ptrs_in_mq_page && g.abts_on_atio_queue && g.mq_bar_mandatory);
        assert_eq!(g.icb, IcbVariant::Isp81xx);
        assert!(!c.cna);
        assert!(probe(0x1077, 0x8031).unwrap().cna);

        let c = probe(0x1077, 0x8001).unwrap();
        assert_eq!(c.gen_info.icb, IcbVariant::Isp81xx);
        assert_eq!(c.gen_info.reg_bar, 1);
        assert_eq!(c.gen_info.flash_data_base, 0x7F80_0000);
        assert_eq!(
            probe(0x1077, 0x2289).unwrap().gen_info.flash_data_base,
            0x7F7D_0000
        );
        assert!(probe(0x1077, 0x2271).unwrap().gen_info.shadow_indexes);
        assert_eq!(
            probe(0x1077, 0x8432).unwrap().generation(),
            Generation::Isp24xx
        );
    }

    #[test]
    fn probe_refuses_with_reasons() {
        assert_eq!(probe(0x8086, 0x2532), Err(ProbeError::NotQlogic(0x8086)));
        assert!(matches!(
            probe(0x1077, 0x8021),
            Err(ProbeError::Unsupported {
                device_id: 0x8021,
                ..
            })
        ));
        assert!(matches!(
            probe(0x1077, 0xF001),
            Err(ProbeError::Unsupported { .. })
        ));
        assert!(matches!(
            probe(0x1077, 0x2061),
            Err(ProbeError::Unsupported { .. })
        ));
        assert_eq!(
            probe(0x1077, 0x1234),
            Err(ProbeError::UnknownDevice(0x1234))
        );
    }

    #[test]
    fn every_chip_points_at_its_generation() {
        for c in CHIPS {
            assert_eq!(c.gen_info.generation.info(), c.gen_info);
            assert_eq!(
                c.gen_info.generation.is_mq_chip(),
                c.gen_info.mq_bar_mandatory
            );
            assert!(c.name.starts_with("ISP"));
        }
        for g in [
            Generation::Isp24xx,
            Generation::Isp25xx,
            Generation::Isp81xx,
            Generation::Isp83xx,
            Generation::Isp27xx,
            Generation::Isp28xx,
        ] {
            assert_eq!(g.info().generation, g);
            assert!(g.name().starts_with("ISP"));
        }
    }
}
