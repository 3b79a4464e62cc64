//! Mailbox commands: opcodes, which registers each one uses, status codes, and builders.
//!
//! Source: reference §3 (protocol, status codes, DMA address split, the commands needed to
//! bring a target port up) and §3.5 (bring-up order). "Inputs" are the registers the driver
//! writes (mb0 = opcode; the Linux driver calls this mask `out_mb`), "outputs" the registers
//! the firmware returns (mb0 = status; Linux `in_mb`). The driver writes **all 32** mailbox
//! registers — inputs with their values, the rest with 0 (gotcha 17) — then
//! [`HccrCommand::SetHostInt`](crate::regs::HccrCommand::SetHostInt).

use core::fmt;

use crate::pci::Generation;
use crate::regs::MAILBOX_COUNT;

/// The Linux driver's mailbox timeout (`MBX_TOV_SECONDS`); on expiry it dumps and resets.
pub const MBX_TIMEOUT_SECONDS: u32 = 30;

/// The seven values MAILBOX_REGISTER_TEST writes to mb1..mb7 and expects echoed.
pub const REGISTER_TEST_PATTERN: [u16; 7] =
    [0xAAAA, 0x5555, 0xAA55, 0x55AA, 0xA5A5, 0x5A5A, 0x2525];

enum_with_unknown! {
    /// A mailbox command opcode (mb0 when the driver posts a command).
    pub enum MbxCommand(u16) {
        /// 0x01.
        LoadRam = 0x01 => "LOAD_RAM",
        /// 0x02: start the loaded firmware.
        ExecuteFirmware = 0x02 => "EXECUTE_FIRMWARE",
        /// 0x03 (28xx).
        LoadFlashFirmware = 0x03 => "LOAD_FLASH_FIRMWARE",
        /// 0x05.
        ReadRamWord = 0x05 => "READ_RAM_WORD",
        /// 0x06: echo test of mb1..mb7.
        MailboxRegisterTest = 0x06 => "MAILBOX_REGISTER_TEST",
        /// 0x07: verify the loaded image.
        VerifyChecksum = 0x07 => "VERIFY_CHECKSUM",
        /// 0x08: "about firmware".
        GetFirmwareVersion = 0x08 => "GET_FIRMWARE_VERSION",
        /// 0x09.
        LoadRiscRam = 0x09 => "LOAD_RISC_RAM",
        /// 0x0A.
        DumpRiscRam = 0x0A => "DUMP_RISC_RAM",
        /// 0x0B: DMA a chunk of the firmware image into RISC memory.
        LoadRiscRamExtended = 0x0B => "LOAD_RISC_RAM_EXTENDED",
        /// 0x0C.
        DumpRiscRamExtended = 0x0C => "DUMP_RISC_RAM_EXTENDED",
        /// 0x0D.
        WriteRamWordExtended = 0x0D => "WRITE_RAM_WORD_EXTENDED",
        /// 0x0F.
        ReadRamExtended = 0x0F => "READ_RAM_EXTENDED",
        /// 0x10.
        SerdesParams = 0x10 => "SERDES_PARAMS",
        /// 0x12.
        GetIocbStatus = 0x12 => "GET_IOCB_STATUS",
        /// 0x14.
        StopFirmware = 0x14 => "STOP_FIRMWARE",
        /// 0x1A (iIDMA).
        PortParams = 0x1A => "PORT_PARAMS",
        /// 0x1F.
        InitializeMultiq = 0x1F => "INITIALIZE_MULTIQ",
        /// 0x20: own port id and topology.
        GetAdapterId = 0x20 => "GET_ADAPTER_ID",
        /// 0x22.
        GetRetryCount = 0x22 => "GET_RETRY_COUNT",
        /// 0x27 (EFT/FCE trace buffers).
        TraceControl = 0x27 => "TRACE_CONTROL",
        /// 0x28 (pre-24xx only).
        GetFirmwareOption = 0x28 => "GET_FIRMWARE_OPTION",
        /// 0x30.
        WriteSfp = 0x30 => "WRITE_SFP",
        /// 0x31.
        ReadSfp = 0x31 => "READ_SFP",
        /// 0x32.
        SetTimeoutParams = 0x32 => "SET_TIMEOUT_PARAMS",
        /// 0x34: extended logins / exchange offload memory control.
        MemoryOffloadControl = 0x34 => "MEMORY_OFFLOAD_CONTROL",
        /// 0x38.
        SetFirmwareOption = 0x38 => "SET_FIRMWARE_OPTION",
        /// 0x3B.
        LedConfig = 0x3B => "LED_CONFIG",
        /// 0x42.
        GetResourceCounts = 0x42 => "GET_RESOURCE_COUNTS",
        /// 0x44.
        DiagnosticEcho = 0x44 => "DIAGNOSTIC_ECHO",
        /// 0x45.
        DiagnosticLoopback = 0x45 => "DIAGNOSTIC_LOOPBACK",
        /// 0x47.
        DportDiagnostics = 0x47 => "DPORT_DIAGNOSTICS",
        /// 0x48: INITIALIZE_FIRMWARE with the NPIV VP table (§5.5).
        MidInitializeFirmware = 0x48 => "MID_INITIALIZE_FIRMWARE",
        /// 0x49.
        MidGetVpDatabase = 0x49 => "MID_GET_VP_DATABASE",
        /// 0x4A.
        MidGetVpEntry = 0x4A => "MID_GET_VP_ENTRY",
        /// 0x52.
        ResetLinkStatus = 0x52 => "RESET_LINK_STATUS",
        /// 0x54: execute one 64-byte IOCB from host memory.
        IocbCommandA64 = 0x54 => "IOCB_COMMAND_A64",
        /// 0x56.
        PortLogout = 0x56 => "PORT_LOGOUT",
        /// 0x59.
        SetRnidParams = 0x59 => "SET_RNID_PARAMS",
        /// 0x5A.
        GetRnidParams = 0x5A => "GET_RNID_PARAMS",
        /// 0x5D.
        DataRate = 0x5D => "DATA_RATE",
        /// 0x60: hand the ICB to the firmware.
        InitializeFirmware = 0x60 => "INITIALIZE_FIRMWARE",
        /// 0x62.
        InitiateLip = 0x62 => "INITIATE_LIP",
        /// 0x64.
        GetPortDatabase = 0x64 => "GET_PORT_DATABASE",
        /// 0x69.
        GetFirmwareState = 0x69 => "GET_FIRMWARE_STATE",
        /// 0x6B.
        GetLinkStatus = 0x6B => "GET_LINK_STATUS",
        /// 0x6D.
        GetLinkPrivStats = 0x6D => "GET_LINK_PRIV_STATS",
        /// 0x6F (legacy; FWI2 uses the LOGINOUT IOCB).
        LoginFabricPort = 0x6F => "LOGIN_FABRIC_PORT",
        /// 0x71 (legacy).
        LogoutFabricPort = 0x71 => "LOGOUT_FABRIC_PORT",
        /// 0x72 (LIP_FULL_LOGIN on older chips; same opcode).
        LinkInitialization = 0x72 => "LINK_INITIALIZATION",
        /// 0x75.
        PortNodeNameList = 0x75 => "PORT_NODE_NAME_LIST",
        /// 0x76.
        SetVendorId = 0x76 => "SET_VENDOR_ID",
        /// 0x7C.
        GetIdList = 0x7C => "GET_ID_LIST",
        /// 0x120 (81xx+).
        PortReset = 0x120 => "PORT_RESET",
        /// 0x122 (81xx+).
        SetPortConfig = 0x122 => "SET_PORT_CONFIG",
        /// 0x123 (81xx+).
        GetPortConfig = 0x123 => "GET_PORT_CONFIG",
    }
}

/// A set of mailbox registers (bit n = mbN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MbMask(pub u32);

impl MbMask {
    /// The mask of the registers listed.
    pub const fn of(regs: &[u8]) -> MbMask {
        let mut m = 0u32;
        let mut i = 0;
        while i < regs.len() {
            m |= 1 << (regs[i] & 31);
            i += 1;
        }
        MbMask(m)
    }

    /// mb`first`..=mb`last`.
    pub const fn range(first: u8, last: u8) -> MbMask {
        let mut m = 0u32;
        let mut i = first;
        while i <= last && i < 32 {
            m |= 1 << i;
            i += 1;
        }
        MbMask(m)
    }

    /// `self ∪ other`.
    pub const fn with(self, other: MbMask) -> MbMask {
        MbMask(self.0 | other.0)
    }

    /// `true` if mb`n` is in the set.
    pub const fn contains(self, n: usize) -> bool {
        n < 32 && self.0 & (1 << n) != 0
    }

    /// Number of registers.
    pub const fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// The register numbers, ascending.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..32).filter(move |&n| self.contains(n))
    }
}

impl fmt::Display for MbMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, n) in self.iter().enumerate() {
            if i != 0 {
                f.write_str(",")?;
            }
            write!(f, "mb{n}")?;
        }
        f.write_str("}")
    }
}

/// Which registers a command reads (inputs) and returns (outputs); both include mb0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RegisterUse {
    /// Written by the driver.
    pub inputs: MbMask,
    /// Returned by the firmware.
    pub outputs: MbMask,
}

const fn use_(inputs: &[u8], outputs: &[u8]) -> RegisterUse {
    RegisterUse {
        inputs: MbMask::of(inputs),
        outputs: MbMask::of(outputs),
    }
}

impl MbxCommand {
    /// The registers this command uses on `generation` (reference §3.4), or `None` for the
    /// commands the reference lists without register details.
    ///
    /// Conditional registers are included when the condition is a property of the chip; the
    /// ones that depend on a flag in the command itself are not: INITIALIZE_FIRMWARE's
    /// extended-ICB registers mb10–14 (mb1 B0) and special-features block mb15–19 (mb1 B1) are
    /// added by [`Mailboxes::initialize_firmware`]'s caller if used. GET_ADAPTER_ID's CNA
    /// outputs mb9–13 are included for 81xx and 83xx (harmless to read on a 2031).
    pub fn registers(self, generation: Generation) -> Option<RegisterUse> {
        use Generation::*;
        let g27 = matches!(generation, Isp27xx | Isp28xx);
        let cna = matches!(generation, Isp81xx | Isp83xx);
        Some(match self {
            MbxCommand::MailboxRegisterTest => {
                use_(&[0, 1, 2, 3, 4, 5, 6, 7], &[0, 1, 2, 3, 4, 5, 6, 7])
            }
            MbxCommand::LoadRiscRamExtended => use_(&[0, 1, 2, 3, 4, 5, 6, 7, 8], &[0, 1]),
            MbxCommand::VerifyChecksum => use_(&[0, 1, 2], &[0, 1, 2]),
            MbxCommand::ExecuteFirmware => use_(&[0, 1, 2, 3, 4, 11], &[0, 1, 2, 3, 5]),
            MbxCommand::GetFirmwareVersion => {
                let mut out = MbMask::range(0, 6).with(MbMask::of(&[15, 16, 17]));
                if cna {
                    out = out.with(MbMask::range(8, 13));
                }
                if g27 {
                    out = out.with(MbMask::range(7, 14)).with(MbMask::range(18, 25));
                }
                RegisterUse {
                    inputs: MbMask::of(&[0]),
                    outputs: out,
                }
            }
            MbxCommand::GetResourceCounts => {
                let mut r = use_(&[0], &[0, 1, 2, 3, 6, 7, 10, 11]);
                if !matches!(generation, Isp24xx | Isp25xx) {
                    r.outputs = r.outputs.with(MbMask::of(&[12]));
                }
                r
            }
            MbxCommand::GetFirmwareOption => use_(&[0], &[0, 1, 2, 3]),
            MbxCommand::SetFirmwareOption => use_(&[0, 1, 2, 3, 10], &[0, 1]),
            MbxCommand::InitializeFirmware | MbxCommand::MidInitializeFirmware => {
                let mut r = use_(&[0, 1, 2, 3, 6, 7], &[0, 1, 2]);
                if generation.is_mq_chip() {
                    r.outputs = r.outputs.with(MbMask::of(&[3]));
                }
                r
            }
            MbxCommand::GetFirmwareState => {
                if g27 {
                    use_(&[0, 12], &[0, 1, 2, 3, 4, 5, 6, 12])
                } else {
                    use_(&[0], &[0, 1, 2, 3, 4, 5, 6])
                }
            }
            MbxCommand::GetAdapterId => {
                let mut out = MbMask::of(&[0, 1, 2, 3, 6, 7]).with(MbMask::range(16, 19));
                if cna {
                    out = out.with(MbMask::range(9, 13));
                }
                if g27 {
                    out = out.with(MbMask::of(&[15])).with(MbMask::range(21, 23));
                }
                RegisterUse {
                    inputs: MbMask::of(&[0, 9]),
                    outputs: out,
                }
            }
            MbxCommand::GetIdList => use_(&[0, 2, 3, 6, 7, 8, 9], &[0, 1]),
            MbxCommand::GetPortDatabase => use_(&[0, 1, 2, 3, 6, 7, 9, 10], &[0, 1]),
            MbxCommand::PortNodeNameList => use_(&[0, 1, 2, 3, 6, 7, 8, 9], &[0]),
            MbxCommand::GetLinkStatus => use_(&[0, 1, 2, 3, 4, 6, 7, 10], &[0, 1]),
            MbxCommand::GetLinkPrivStats => use_(&[0, 2, 3, 6, 7, 8, 9, 10], &[0]),
            MbxCommand::GetRetryCount => use_(&[0], &[0, 1, 2, 3]),
            MbxCommand::IocbCommandA64 => use_(&[0, 1, 2, 3, 6, 7], &[0, 1]),
            MbxCommand::LoginFabricPort => use_(&[0, 1, 2, 3, 10], &[0, 1, 2, 6, 7]),
            MbxCommand::LogoutFabricPort => use_(&[0, 1, 10], &[0, 1]),
            MbxCommand::LinkInitialization => use_(&[0, 1, 2, 3], &[0]),
            MbxCommand::StopFirmware => use_(&[0], &[0]),
            _ => return None,
        })
    }
}

enum_with_unknown! {
    /// Mailbox completion status (mb0 after a command; also `host_status[31:16]`).
    pub enum MbxStatus(u16) {
        /// 0x4000: success.
        CommandComplete = 0x4000 => "COMMAND_COMPLETE",
        /// 0x4001: invalid command (what a simulator answers for opcodes it lacks).
        InvalidCommand = 0x4001 => "INVALID_COMMAND",
        /// 0x4002.
        HostInterfaceError = 0x4002 => "HOST_INTERFACE_ERROR",
        /// 0x4003.
        TestFailed = 0x4003 => "TEST_FAILED",
        /// 0x4005: details in mb1.
        CommandError = 0x4005 => "COMMAND_ERROR",
        /// 0x4006.
        CommandParameterError = 0x4006 => "COMMAND_PARAMETER_ERROR",
        /// 0x4007.
        PortIdUsed = 0x4007 => "PORT_ID_USED",
        /// 0x4008.
        LoopIdUsed = 0x4008 => "LOOP_ID_USED",
        /// 0x4009.
        AllIdsInUse = 0x4009 => "ALL_IDS_IN_USE",
        /// 0x400A.
        NotLoggedIn = 0x400A => "NOT_LOGGED_IN",
        /// 0x400B.
        LinkDownError = 0x400B => "LINK_DOWN_ERROR",
        /// 0x400C.
        DiagEchoTestError = 0x400C => "DIAG_ECHO_TEST_ERROR",
        /// 0x4010.
        ChecksumError = 0x4010 => "CHECKSUM_ERROR",
        /// 0x4020.
        InvalidProductKey = 0x4020 => "INVALID_PRODUCT_KEY",
    }
}

impl MbxStatus {
    /// `true` for 0x4000.
    pub fn is_ok(self) -> bool {
        self == MbxStatus::CommandComplete
    }
}

/// A mailbox-IOCB (0x39) completion's mb0 is judged with mask 0x3FFF: `true` if it succeeded.
pub const fn mbx_iocb_status_ok(mb0: u16) -> bool {
    mb0 & 0x3FFF == 0
}

/// GET_ADAPTER_ID mb0 = 0x4005 with this mb1: the loop is in transition (retry).
pub const ADAPTER_ID_LOOP_TRANSITION: u16 = 0x07;
/// GET_ADAPTER_ID mb0 = 0x4005 with this mb1: the driver should issue link initialization.
pub const ADAPTER_ID_NEEDS_LINK_INIT: u16 = 0x1B;

/// The 64-bit DMA address split used by every mailbox command that carries a host buffer
/// (reference §3.3): mb3 = `A[15:0]`, mb2 = `A[31:16]`, mb7 = `A[47:32]`, mb6 = `A[63:48]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DmaAddrRegs {
    /// `A[31:16]`.
    pub mb2: u16,
    /// `A[15:0]`.
    pub mb3: u16,
    /// `A[63:48]`.
    pub mb6: u16,
    /// `A[47:32]`.
    pub mb7: u16,
}

impl DmaAddrRegs {
    /// Splits `addr`.
    pub const fn split(addr: u64) -> DmaAddrRegs {
        DmaAddrRegs {
            mb3: addr as u16,
            mb2: (addr >> 16) as u16,
            mb7: (addr >> 32) as u16,
            mb6: (addr >> 48) as u16,
        }
    }

    /// Joins the four registers back into the address.
    pub const fn addr(self) -> u64 {
        (self.mb6 as u64) << 48
            | (self.mb7 as u64) << 32
            | (self.mb2 as u64) << 16
            | self.mb3 as u64
    }
}

/// The 32 mailbox registers of one command or completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mailboxes(pub [u16; MAILBOX_COUNT]);

impl Mailboxes {
    /// All registers zero except mb0 = `command`.
    pub fn new(command: MbxCommand) -> Mailboxes {
        let mut m = Mailboxes([0; MAILBOX_COUNT]);
        m.0[0] = command.into();
        m
    }

    /// mb`n` (0 if `n > 31`).
    pub fn get(&self, n: usize) -> u16 {
        self.0.get(n).copied().unwrap_or(0)
    }

    /// Sets mb`n` (ignored if `n > 31`); returns `self` for chaining.
    pub fn set(&mut self, n: usize, v: u16) -> &mut Mailboxes {
        if let Some(r) = self.0.get_mut(n) {
            *r = v;
        }
        self
    }

    /// mb0 read as a command opcode.
    pub fn command(&self) -> MbxCommand {
        MbxCommand::from(self.0[0])
    }

    /// mb0 read as a completion status.
    pub fn status(&self) -> MbxStatus {
        MbxStatus::from(self.0[0])
    }

    /// Writes a DMA address into mb2/mb3/mb6/mb7.
    pub fn set_dma_addr(&mut self, addr: u64) -> &mut Mailboxes {
        let r = DmaAddrRegs::split(addr);
        self.0[2] = r.mb2;
        self.0[3] = r.mb3;
        self.0[6] = r.mb6;
        self.0[7] = r.mb7;
        self
    }

    /// The DMA address in mb2/mb3/mb6/mb7.
    pub fn dma_addr(&self) -> u64 {
        DmaAddrRegs {
            mb2: self.0[2],
            mb3: self.0[3],
            mb6: self.0[6],
            mb7: self.0[7],
        }
        .addr()
    }

    /// Zeroes every register not in `mask` (what the driver writes for a command's inputs).
    pub fn masked(&self, mask: MbMask) -> Mailboxes {
        let mut m = *self;
        for (n, r) in m.0.iter_mut().enumerate() {
            if !mask.contains(n) {
                *r = 0;
            }
        }
        m
    }

    /// 0x06 MAILBOX_REGISTER_TEST with [`REGISTER_TEST_PATTERN`] in mb1..mb7.
    pub fn mailbox_register_test() -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::MailboxRegisterTest);
        m.0[1..8].copy_from_slice(&REGISTER_TEST_PATTERN);
        m
    }

    /// 0x0B LOAD_RISC_RAM_EXTENDED: `words` 32-bit words from `dma` to RISC address `risc_addr`.
    pub fn load_risc_ram_extended(risc_addr: u32, dma: u64, words: u32) -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::LoadRiscRamExtended);
        m.set_dma_addr(dma);
        m.0[1] = risc_addr as u16;
        m.0[8] = (risc_addr >> 16) as u16;
        m.0[4] = (words >> 16) as u16;
        m.0[5] = words as u16;
        m
    }

    /// The RISC address of a LOAD_RISC_RAM_EXTENDED (mb8:mb1).
    pub fn risc_addr(&self) -> u32 {
        (self.0[8] as u32) << 16 | self.0[1] as u32
    }

    /// The length in words of a LOAD_RISC_RAM_EXTENDED (mb4:mb5).
    pub fn load_length_words(&self) -> u32 {
        (self.0[4] as u32) << 16 | self.0[5] as u32
    }

    /// 0x07 VERIFY_CHECKSUM of the image at `risc_addr` (mb1 = high half, mb2 = low half).
    pub fn verify_checksum(risc_addr: u32) -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::VerifyChecksum);
        m.0[1] = (risc_addr >> 16) as u16;
        m.0[2] = risc_addr as u16;
        m
    }

    /// 0x02 EXECUTE_FIRMWARE at `start` with mb4 options and mb11 options2.
    pub fn execute_firmware(start: u32, options: ExecuteOptions, options2: u16) -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::ExecuteFirmware);
        m.0[1] = (start >> 16) as u16;
        m.0[2] = start as u16;
        m.0[4] = options.bits();
        m.0[11] = options2;
        m
    }

    /// The start address of an EXECUTE_FIRMWARE or VERIFY_CHECKSUM (mb1:mb2).
    pub fn start_addr(&self) -> u32 {
        (self.0[1] as u32) << 16 | self.0[2] as u32
    }

    /// 0x38 SET_FIRMWARE_OPTION with option words 1..3 in mb1..mb3.
    pub fn set_firmware_option(words: [u16; 3]) -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::SetFirmwareOption);
        m.0[1..4].copy_from_slice(&words);
        m
    }

    /// 0x60 INITIALIZE_FIRMWARE (or 0x48 MID_INITIALIZE_FIRMWARE if `mid`) with the ICB at `icb`.
    pub fn initialize_firmware(icb: u64, mid: bool) -> Mailboxes {
        let cmd = if mid {
            MbxCommand::MidInitializeFirmware
        } else {
            MbxCommand::InitializeFirmware
        };
        let mut m = Mailboxes::new(cmd);
        m.set_dma_addr(icb);
        m
    }

    /// 0x20 GET_ADAPTER_ID for virtual port `vp_index` (mb9).
    pub fn get_adapter_id(vp_index: u16) -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::GetAdapterId);
        m.0[9] = vp_index;
        m
    }

    /// 0x7C GET_ID_LIST into the buffer at `dma`, for `vp_index` (mb8 = 0, meaning unconfirmed).
    pub fn get_id_list(dma: u64, vp_index: u16) -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::GetIdList);
        m.set_dma_addr(dma);
        m.0[9] = vp_index;
        m
    }

    /// 0x64 GET_PORT_DATABASE of `handle` into the 64-byte buffer at `dma`.
    pub fn get_port_database(
        handle: crate::NportHandle,
        dma: u64,
        vp_index: u16,
        options: u16,
    ) -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::GetPortDatabase);
        m.0[1] = handle.0;
        m.set_dma_addr(dma);
        m.0[9] = vp_index;
        m.0[10] = options;
        m
    }

    /// 0x54 IOCB_COMMAND_A64: execute the 64-byte IOCB at `dma` (written back in place).
    pub fn iocb_command_a64(dma: u64) -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::IocbCommandA64);
        m.set_dma_addr(dma);
        m
    }

    /// 0x72 LINK_INITIALIZATION: mb1 = B4 plus B6 (loop) or B5 (point-to-point), mb3 = reset delay.
    pub fn link_initialization(loop_mode: bool, reset_delay: u16) -> Mailboxes {
        let mut m = Mailboxes::new(MbxCommand::LinkInitialization);
        m.0[1] = 1 << 4 | if loop_mode { 1 << 6 } else { 1 << 5 };
        m.0[3] = reset_delay;
        m
    }
}

impl fmt::Display for Mailboxes {
    /// `mb0=0x0060(INITIALIZE_FIRMWARE) mb2=0x1000 ...`: mb0 decoded as a command if it is one,
    /// else as a status; other registers only if non-zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mb0 = self.0[0];
        write!(f, "mb0={mb0:#06x}")?;
        if let Some(n) = MbxCommand::from(mb0).name() {
            write!(f, "({n})")?;
        } else if let Some(n) = MbxStatus::from(mb0).name() {
            write!(f, "({n})")?;
        }
        for (i, v) in self.0.iter().enumerate().skip(1) {
            if *v != 0 {
                write!(f, " mb{i}={v:#06x}")?;
            }
        }
        Ok(())
    }
}

bit_flags! {
    /// EXECUTE_FIRMWARE mb4 options.
    pub struct ExecuteOptions: u16 {
        /// B0: long range / BPM.
        const LONG_RANGE = 1 << 0;
        /// B2: exchange offload.
        const EXCHANGE_OFFLOAD = 1 << 2;
        /// B3: NVMe (27xx/28xx).
        const NVME = 1 << 3;
        /// B4: minimum speed in mb11.
        const MIN_SPEED = 1 << 4;
        /// B7: extended logins.
        const EXTENDED_LOGINS = 1 << 7;
    }
}

bit_flags! {
    /// GET_FIRMWARE_VERSION mb6 attributes.
    pub struct FwAttributes: u16 {
        /// B2: NPIV supported.
        const NPIV = 1 << 2;
        /// B6: multiqueue supported.
        const MULTIQUEUE = 1 << 6;
    }
}

/// The common outputs of GET_FIRMWARE_VERSION (0x08).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FirmwareVersion {
    /// mb1.
    pub major: u16,
    /// mb2.
    pub minor: u16,
    /// mb3.
    pub subminor: u16,
    /// `(mb5 << 16) + mb4`.
    pub memory_size: u32,
    /// mb6.
    pub attributes: FwAttributes,
    /// mb15.
    pub attributes_high: u16,
    /// mb16/mb17 as `(mb17 << 16) | mb16`.
    pub extended_attributes: u32,
}

impl FirmwareVersion {
    /// Decodes the output registers.
    pub fn from_mailboxes(m: &Mailboxes) -> FirmwareVersion {
        FirmwareVersion {
            major: m.0[1],
            minor: m.0[2],
            subminor: m.0[3],
            memory_size: (m.0[5] as u32) << 16 | m.0[4] as u32,
            attributes: FwAttributes::from_bits_retain(m.0[6]),
            attributes_high: m.0[15],
            extended_attributes: (m.0[17] as u32) << 16 | m.0[16] as u32,
        }
    }

    /// Encodes into the output registers (for a simulator); mb0 = 0x4000.
    pub fn to_mailboxes(&self) -> Mailboxes {
        let mut m = Mailboxes([0; MAILBOX_COUNT]);
        m.0[0] = MbxStatus::CommandComplete.into();
        m.0[1] = self.major;
        m.0[2] = self.minor;
        m.0[3] = self.subminor;
        m.0[4] = self.memory_size as u16;
        m.0[5] = (self.memory_size >> 16) as u16;
        m.0[6] = self.attributes.bits();
        m.0[15] = self.attributes_high;
        m.0[16] = self.extended_attributes as u16;
        m.0[17] = (self.extended_attributes >> 16) as u16;
        m
    }
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "firmware {}.{:02}.{:02} mem={} attr={}",
            self.major, self.minor, self.subminor, self.memory_size, self.attributes
        )
    }
}

/// The outputs of GET_RESOURCE_COUNTS (0x42).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResourceCounts {
    /// mb1: original target exchange count.
    pub orig_target_exchanges: u16,
    /// mb2: current target exchange count.
    pub cur_target_exchanges: u16,
    /// mb3: current exchange count (Linux puts it into the ICB execution throttle and
    /// answers BUSY above 90 % of it).
    pub cur_exchanges: u16,
    /// mb6: original exchange count.
    pub orig_exchanges: u16,
    /// mb7: current IOCB count.
    pub cur_iocbs: u16,
    /// mb10: original IOCB count.
    pub orig_iocbs: u16,
    /// mb11: max NPIV virtual ports.
    pub max_vports: u16,
    /// mb12: max FCFs (81xx+).
    pub max_fcfs: u16,
}

impl ResourceCounts {
    /// Decodes the output registers.
    pub fn from_mailboxes(m: &Mailboxes) -> ResourceCounts {
        ResourceCounts {
            orig_target_exchanges: m.0[1],
            cur_target_exchanges: m.0[2],
            cur_exchanges: m.0[3],
            orig_exchanges: m.0[6],
            cur_iocbs: m.0[7],
            orig_iocbs: m.0[10],
            max_vports: m.0[11],
            max_fcfs: m.0[12],
        }
    }

    /// Encodes into the output registers (for a simulator); mb0 = 0x4000.
    pub fn to_mailboxes(&self) -> Mailboxes {
        let mut m = Mailboxes([0; MAILBOX_COUNT]);
        m.0[0] = MbxStatus::CommandComplete.into();
        m.0[1] = self.orig_target_exchanges;
        m.0[2] = self.cur_target_exchanges;
        m.0[3] = self.cur_exchanges;
        m.0[6] = self.orig_exchanges;
        m.0[7] = self.cur_iocbs;
        m.0[10] = self.orig_iocbs;
        m.0[11] = self.max_vports;
        m.0[12] = self.max_fcfs;
        m
    }
}

enum_with_unknown! {
    /// GET_FIRMWARE_STATE mb1.
    pub enum FirmwareState(u16) {
        /// 0.
        ConfigWait = 0 => "CONFIG_WAIT",
        /// 1.
        WaitAlPa = 1 => "WAIT_AL_PA",
        /// 2.
        WaitLogin = 2 => "WAIT_LOGIN",
        /// 3: the firmware is ready (the driver polls for this every 500 ms).
        Ready = 3 => "READY",
        /// 4.
        LossOfSync = 4 => "LOSS_OF_SYNC",
        /// 5.
        Error = 5 => "ERROR",
        /// 6.
        Reinit = 6 => "REINIT",
        /// 7.
        NonParticipating = 7 => "NON_PARTICIPATING",
    }
}

enum_with_unknown! {
    /// GET_ADAPTER_ID mb6: the port's topology.
    pub enum Topology(u16) {
        /// 0: NL_Port on a private loop.
        Loop = 0 => "LOOP",
        /// 1: NL_Port on a public loop (FL_Port).
        FlPort = 1 => "FL_PORT",
        /// 2: N_Port-to-N_Port (point-to-point).
        PointToPoint = 2 => "N2N",
        /// 3: N_Port attached to a fabric F_Port.
        FPort = 3 => "F_PORT",
    }
}

/// The outputs of GET_ADAPTER_ID (0x20) every FWI2 chip returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdapterId {
    /// mb1: own N_Port handle (loop id).
    pub nport_handle: crate::NportHandle,
    /// mb2 = `(area << 8) | al_pa`, mb3 low byte = domain.
    pub port_id: crate::PortId,
    /// mb6.
    pub topology: Topology,
    /// mb7: switch capabilities (B14 = FA-WWPN in mb16–19 valid).
    pub switch_capabilities: u16,
}

impl AdapterId {
    /// Decodes the output registers.
    pub fn from_mailboxes(m: &Mailboxes) -> AdapterId {
        AdapterId {
            nport_handle: crate::NportHandle(m.0[1]),
            port_id: crate::PortId::new((m.0[3] as u32 & 0xFF) << 16 | m.0[2] as u32),
            topology: Topology::from(m.0[6]),
            switch_capabilities: m.0[7],
        }
    }

    /// Encodes into the output registers (for a simulator); mb0 = 0x4000.
    pub fn to_mailboxes(&self) -> Mailboxes {
        let mut m = Mailboxes([0; MAILBOX_COUNT]);
        m.0[0] = MbxStatus::CommandComplete.into();
        m.0[1] = self.nport_handle.0;
        m.0[2] = self.port_id.get() as u16;
        m.0[3] = self.port_id.domain() as u16;
        m.0[6] = self.topology.into();
        m.0[7] = self.switch_capabilities;
        m
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn dma_split_matches_reference() {
        let r = DmaAddrRegs::split(0x1122_3344_5566_7788);
        assert_eq!(
            (r.mb3, r.mb2, r.mb7, r.mb6),
            (0x7788, 0x5566, 0x3344, 0x1122)
        );
        assert_eq!(r.addr(), 0x1122_3344_5566_7788);
        let mut m = Mailboxes::new(MbxCommand::InitializeFirmware);
        m.set_dma_addr(0xAAAA_BBBB_CCCC_DDDD);
        assert_eq!(
            (m.get(2), m.get(3), m.get(6), m.get(7)),
            (0xCCCC, 0xDDDD, 0xAAAA, 0xBBBB)
        );
        assert_eq!(m.dma_addr(), 0xAAAA_BBBB_CCCC_DDDD);
    }

    #[test]
    fn register_use_per_command() {
        let g = Generation::Isp25xx;
        let r = MbxCommand::LoadRiscRamExtended.registers(g).unwrap();
        assert_eq!(r.inputs, MbMask::range(0, 8));
        assert_eq!(r.outputs, MbMask::of(&[0, 1]));
        let r = MbxCommand::GetPortDatabase.registers(g).unwrap();
        assert_eq!(r.inputs.to_string(), "{mb0,mb1,mb2,mb3,mb6,mb7,mb9,mb10}");
        let r = MbxCommand::ExecuteFirmware.registers(g).unwrap();
        assert!(r.inputs.contains(11) && r.outputs.contains(5) && !r.outputs.contains(4));
        let v25 = MbxCommand::GetFirmwareVersion.registers(g).unwrap();
        let v27 = MbxCommand::GetFirmwareVersion
            .registers(Generation::Isp27xx)
            .unwrap();
        assert!(!v25.outputs.contains(20) && v27.outputs.contains(20) && v27.outputs.contains(7));
        let v81 = MbxCommand::GetFirmwareVersion
            .registers(Generation::Isp81xx)
            .unwrap();
        assert!(v81.outputs.contains(8) && !v81.outputs.contains(7));
        let rc = MbxCommand::GetResourceCounts.registers(g).unwrap();
        assert!(!rc.outputs.contains(12));
        assert!(
            MbxCommand::GetResourceCounts
                .registers(Generation::Isp81xx)
                .unwrap()
                .outputs
                .contains(12)
        );
        let fs = MbxCommand::GetFirmwareState
            .registers(Generation::Isp28xx)
            .unwrap();
        assert!(fs.inputs.contains(12) && fs.outputs.contains(12));
        assert!(
            !MbxCommand::GetFirmwareState
                .registers(g)
                .unwrap()
                .inputs
                .contains(12)
        );
        let ai = MbxCommand::GetAdapterId
            .registers(Generation::Isp83xx)
            .unwrap();
        assert!(ai.outputs.contains(9) && ai.outputs.contains(19) && !ai.outputs.contains(21));
        assert!(
            MbxCommand::GetAdapterId
                .registers(Generation::Isp27xx)
                .unwrap()
                .outputs
                .contains(22)
        );
        let init = MbxCommand::InitializeFirmware
            .registers(Generation::Isp83xx)
            .unwrap();
        assert!(init.outputs.contains(3));
        assert!(
            !MbxCommand::MidInitializeFirmware
                .registers(g)
                .unwrap()
                .outputs
                .contains(3)
        );
        assert_eq!(
            MbxCommand::MailboxRegisterTest
                .registers(g)
                .unwrap()
                .outputs
                .count(),
            8
        );
        for c in [
            MbxCommand::VerifyChecksum,
            MbxCommand::GetFirmwareOption,
            MbxCommand::SetFirmwareOption,
            MbxCommand::GetIdList,
            MbxCommand::PortNodeNameList,
            MbxCommand::GetLinkStatus,
            MbxCommand::GetLinkPrivStats,
            MbxCommand::GetRetryCount,
            MbxCommand::IocbCommandA64,
            MbxCommand::LoginFabricPort,
            MbxCommand::LogoutFabricPort,
            MbxCommand::LinkInitialization,
            MbxCommand::StopFirmware,
        ] {
            let r = c.registers(g).unwrap();
            assert!(r.inputs.contains(0) && r.outputs.contains(0), "{c}");
        }
        assert_eq!(MbxCommand::TraceControl.registers(g), None);
        assert_eq!(MbxCommand::Unknown(0x99).registers(g), None);
    }

    #[test]
    fn builders_put_values_where_the_reference_says() {
        let m = Mailboxes::mailbox_register_test();
        assert_eq!(
            m.0[..8],
            [0x06, 0xAAAA, 0x5555, 0xAA55, 0x55AA, 0xA5A5, 0x5A5A, 0x2525]
        );
        let m = Mailboxes::load_risc_ram_extended(0x0012_3456, 0x1_0000_2000, 0x0001_0004);
        assert_eq!(
            (m.get(1), m.get(8), m.get(4), m.get(5)),
            (0x3456, 0x0012, 0x0001, 0x0004)
        );
        assert_eq!(
            (m.risc_addr(), m.load_length_words(), m.dma_addr()),
            (0x0012_3456, 0x0001_0004, 0x1_0000_2000)
        );
        let m = Mailboxes::verify_checksum(0x0010_0000);
        assert_eq!(
            (m.get(1), m.get(2), m.start_addr()),
            (0x0010, 0x0000, 0x0010_0000)
        );
        let m = Mailboxes::execute_firmware(0x0010_0000, ExecuteOptions::EXTENDED_LOGINS, 7);
        assert_eq!(
            (m.command(), m.get(1), m.get(4), m.get(11)),
            (MbxCommand::ExecuteFirmware, 0x10, 0x80, 7)
        );
        let m = Mailboxes::set_firmware_option([1, 2, 3]);
        assert_eq!(m.0[..4], [0x38, 1, 2, 3]);
        assert_eq!(
            Mailboxes::initialize_firmware(0x1000, true).command(),
            MbxCommand::MidInitializeFirmware
        );
        assert_eq!(
            Mailboxes::initialize_firmware(0x1000, false).command(),
            MbxCommand::InitializeFirmware
        );
        assert_eq!(Mailboxes::get_adapter_id(3).get(9), 3);
        let m = Mailboxes::get_id_list(0x2000, 1);
        assert_eq!(
            (m.command(), m.dma_addr(), m.get(9), m.get(8)),
            (MbxCommand::GetIdList, 0x2000, 1, 0)
        );
        let m = Mailboxes::get_port_database(crate::NportHandle(0x81), 0x3000, 0, 1);
        assert_eq!((m.get(1), m.dma_addr(), m.get(10)), (0x81, 0x3000, 1));
        assert_eq!(Mailboxes::iocb_command_a64(0x4000).dma_addr(), 0x4000);
        let m = Mailboxes::link_initialization(false, 5);
        assert_eq!((m.get(1), m.get(3)), (0x30, 5));
        assert_eq!(Mailboxes::link_initialization(true, 0).get(1), 0x50);
        let mut m = Mailboxes::new(MbxCommand::GetFirmwareState);
        m.set(40, 1).set(31, 9);
        assert_eq!((m.get(40), m.get(31)), (0, 9));
        let only = m.masked(MbMask::of(&[0]));
        assert_eq!(only.get(31), 0);
        assert_eq!(only.get(0), 0x69);
    }

    #[test]
    fn status_codes_and_outputs() {
        assert!(MbxStatus::from(0x4000).is_ok());
        assert!(!MbxStatus::InvalidCommand.is_ok());
        assert_eq!(MbxStatus::from(0x400A), MbxStatus::NotLoggedIn);
        assert_eq!(MbxStatus::from(0x4004).to_string(), "UNKNOWN(0x4004)");
        assert!(mbx_iocb_status_ok(0x4000) && !mbx_iocb_status_ok(0x4005));
        let mut m = Mailboxes([0; 32]);
        m.0[0] = 0x4000;
        assert_eq!(m.status(), MbxStatus::CommandComplete);
        assert_eq!(m.to_string(), "mb0=0x4000(COMMAND_COMPLETE)");
        let fw = FirmwareVersion {
            major: 8,
            minor: 7,
            subminor: 3,
            memory_size: 0x0001_2345,
            attributes: FwAttributes::NPIV | FwAttributes::MULTIQUEUE,
            attributes_high: 1,
            extended_attributes: 0x0002_0003,
        };
        let m = fw.to_mailboxes();
        assert_eq!(
            (m.get(4), m.get(5), m.get(6), m.get(16), m.get(17)),
            (0x2345, 1, 0x44, 3, 2)
        );
        assert_eq!(FirmwareVersion::from_mailboxes(&m), fw);
        assert_eq!(
            fw.to_string(),
            "firmware 8.07.03 mem=74565 attr=NPIV|MULTIQUEUE"
        );
        let rc = ResourceCounts {
            cur_exchanges: 2048,
            max_fcfs: 3,
            orig_iocbs: 7,
            ..Default::default()
        };
        let m = rc.to_mailboxes();
        assert_eq!((m.get(3), m.get(12), m.get(10)), (2048, 3, 7));
        assert_eq!(ResourceCounts::from_mailboxes(&m), rc);
        let id = AdapterId {
            nport_handle: crate::NportHandle(0x7E),
            port_id: crate::PortId::new(0x0A0B0C),
            topology: Topology::FPort,
            switch_capabilities: 0,
        };
        let m = id.to_mailboxes();
        assert_eq!((m.get(2), m.get(3), m.get(6)), (0x0B0C, 0x0A, 3));
        assert_eq!(AdapterId::from_mailboxes(&m), id);
        assert_eq!(FirmwareState::from(3), FirmwareState::Ready);
        assert_eq!(Topology::from(2).to_string(), "N2N");
        let m = Mailboxes::new(MbxCommand::GetPortDatabase);
        assert_eq!(m.to_string(), "mb0=0x0064(GET_PORT_DATABASE)");
    }
}
