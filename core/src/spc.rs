//! SPC-5 commands: INQUIRY and VPD pages, REPORT LUNS, REQUEST SENSE, MODE
//! SENSE/SELECT, LOG SENSE, REPORT SUPPORTED OPERATION CODES / TASK
//! MANAGEMENT FUNCTIONS, REPORT TARGET PORT GROUPS, RESERVE/RELEASE.

use crate::cdb::{self, OpInfo, all_ops, be, be_at};
use crate::payload::Payload;
use crate::sense::{FieldPointer, SENSE_MAX, SenseReason, UnitAttention};
use crate::target::{NIL, Step, Target, check};
use crate::transport::{DataDirection, Transport};

/// Version descriptors of standard INQUIRY data (SPC-5 table "Version descriptor values").
const VERSION_SAM5: u16 = 0x00a0;
const VERSION_SPC4: u16 = 0x0460;
const VERSION_SBC3: u16 = 0x04c0;

/// VPD pages supported, in order.
const VPD_PAGES: [u8; 8] = [0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2];

fn invalid_cdb(byte: u16, bit: u8) -> SenseReason {
    SenseReason::InvalidFieldInCdb(FieldPointer::bit(byte, bit))
}

fn invalid_param(byte: usize, bit: Option<u8>) -> SenseReason {
    SenseReason::InvalidFieldInParameterList(FieldPointer {
        byte: byte as u16,
        bit,
    })
}

/// A mode page as bytes (current, changeable or default values).
struct ModePage {
    bytes: [u8; 20],
    len: usize,
}

/// Page controls of MODE SENSE.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PageControl {
    Current,
    Changeable,
    Default,
    Saved,
}

const MODE_PAGES: [u8; 4] = [0x01, 0x08, 0x0a, 0x1c];

impl Target<'_> {
    /// The LU of a command, `None` for an unmapped LUN.
    fn cmd_lu(&self, i: usize) -> Option<usize> {
        let l = self.cmds[i].lu;
        (l != NIL).then_some(usize::from(l))
    }

    fn write_protected(&self, i: usize) -> bool {
        let c = &self.cmds[i];
        self.lus
            .get(usize::from(c.lu))
            .is_some_and(|lu| lu.cfg.read_only || lu.mode.swp || c.map_ro)
    }

    // ------------------------------------------------------ REQUEST SENSE

    pub(crate) fn exec_request_sense(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let desc = c.cdb[1] & 0x01 != 0;
        let alloc = u64::from(c.cdb[4]);
        let s = usize::from(c.session);
        let (reason, ua) = match self.cmd_lu(i) {
            None => (SenseReason::LunNotSupported, None),
            Some(l) => {
                let pending = self.pending_ua(s, l);
                let lu = &self.lus[l];
                if let Some(ua) = UnitAttention::ALL
                    .iter()
                    .copied()
                    .find(|u| pending & u.bit() != 0)
                {
                    (SenseReason::UnitAttention(ua), Some((l, ua)))
                } else if let Some(bg) = &lu.bg {
                    let p = lu.bg_progress();
                    match bg.kind {
                        crate::target::BgKind::Format => (SenseReason::FormatInProgress(p), None),
                        _ => (SenseReason::SanitizeInProgress(p), None),
                    }
                } else if !lu.loaded {
                    (SenseReason::MediumNotPresent, None)
                } else if !lu.started {
                    (SenseReason::NotReadyStopped, None)
                } else {
                    (SenseReason::NoSense, None)
                }
            }
        };
        let mut sense = [0u8; SENSE_MAX];
        let n = reason.sense_data().encode(desc, &mut sense);
        let step = self.respond_payload(i, alloc, |_, _, p| {
            p.put(&sense[..n]);
            Ok(())
        });
        // The unit attention is cleared only once it is reported.
        if let Some((l, ua)) = ua
            && self.cmds[i].state == crate::target::CmdState::Respond
            && self.cmds[i].sense.is_none()
        {
            self.clear_ua(s, l, ua);
        }
        step
    }

    // ------------------------------------------------------ INQUIRY

    pub(crate) fn exec_inquiry(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let (evpd, page) = (c.cdb[1] & 0x01 != 0, c.cdb[2]);
        let alloc = be(&c.cdb, (3, 2));
        if !evpd && page != 0 {
            return self.fail(i, invalid_cdb(2, 7));
        }
        if evpd && !VPD_PAGES.contains(&page) {
            return self.fail(i, invalid_cdb(2, 7));
        }
        if evpd && self.cmd_lu(i).is_none() && page != 0x00 {
            return self.fail(i, invalid_cdb(2, 7));
        }
        self.respond_payload(i, alloc, move |t, i, p| {
            if evpd {
                t.gen_vpd(i, page, p)
            } else {
                t.gen_std_inquiry(i, p)
            }
        })
    }

    /// PERIPHERAL QUALIFIER and DEVICE TYPE: 0 (direct access) for a
    /// mapped LUN, 3/1Fh for one with no logical unit.
    fn peripheral(&self, i: usize) -> u8 {
        if self.cmd_lu(i).is_some() { 0x00 } else { 0x7f }
    }

    fn gen_std_inquiry(&self, i: usize, p: &mut Payload<'_>) -> Result<(), SenseReason> {
        let lu = self.cmd_lu(i).map(|l| &self.lus[l]);
        p.u8(self.peripheral(i));
        p.u8(if lu.is_some_and(|lu| lu.cfg.removable) {
            0x80
        } else {
            0
        });
        p.u8(0x06); // SPC-4
        p.u8(0x20 | 0x10 | 0x02); // NORMACA, HISUP, RESPONSE DATA FORMAT 2
        p.u8(91); // ADDITIONAL LENGTH: 96 - 5
        p.u8(0x10 | 0x08); // TPGS = 01b: implicit ALUA; 3PC: EXTENDED COPY
        let ports = self.ports.iter().filter(|x| x.in_use).count();
        p.u8(if ports > 1 { 0x10 } else { 0 }); // MULTIP
        p.u8(0x02); // CMDQUE
        p.put(&self.cfg.vendor);
        p.put(&self.cfg.product);
        p.put(&self.cfg.revision);
        p.zeros(20); // vendor specific
        p.zeros(2);
        for v in [
            VERSION_SAM5,
            VERSION_SPC4,
            VERSION_SBC3,
            self.cfg.transport_version,
        ] {
            p.u16(v);
        }
        p.zeros(8); // four more version descriptors
        p.zeros(22);
        Ok(())
    }

    fn gen_vpd(&self, i: usize, page: u8, p: &mut Payload<'_>) -> Result<(), SenseReason> {
        p.u8(self.peripheral(i));
        p.u8(page);
        let len_at = p.pos();
        p.u16(0);
        let start = p.pos();
        let Some(l) = self.cmd_lu(i) else {
            p.u8(0x00);
            p.patch(len_at, &1u16.to_be_bytes());
            return Ok(());
        };
        let lu = &self.lus[l];
        match page {
            0x00 => p.put(&VPD_PAGES),
            0x80 => p.put(&self.serial_of(l)),
            0x83 => self.gen_device_id(i, l, p),
            0x86 => {
                p.u8(0); // SPT, GRD_CHK, APP_CHK, REF_CHK
                p.u8(0x04 | 0x02 | 0x01); // HEADSUP, ORDSUP, SIMPSUP
                p.u8(if lu.cfg.write_cache { 0x01 } else { 0 }); // V_SUP
                p.zeros(57);
            }
            0x8f => self.gen_third_party_copy(p),
            0xb0 => self.gen_block_limits(l, p),
            0xb1 => {
                p.u16(lu.cfg.rotation_rate);
                p.u8(0); // PRODUCT TYPE: not indicated
                // WABEREQ 01b: after SANITIZE BLOCK ERASE a read completes with
                // GOOD (the blocks read as zeros: deallocated, or written with
                // zeros). WACEREQ 00b: no CRYPTOGRAPHIC ERASE. NOMINAL FORM
                // FACTOR 0h: not reported.
                p.u8(0x40);
                p.zeros(56);
            }
            0xb2 => {
                p.u8(0); // THRESHOLD EXPONENT
                if lu.cfg.thin {
                    // LBPU, LBPWS, LBPWS10, LBPRZ = 001b
                    p.u8(0x80 | 0x40 | 0x20 | 0x04);
                    p.u8(0x02); // PROVISIONING TYPE: thin
                } else {
                    p.u8(0);
                    p.u8(0);
                }
                p.u8(0);
            }
            _ => return Err(invalid_cdb(2, 7)),
        }
        let len = (p.pos() - start) as u16;
        p.patch(len_at, &len.to_be_bytes());
        Ok(())
    }

    /// Unit serial number: configured, or the hex of the LU's identifier.
    fn serial_of(&self, l: usize) -> [u8; 32] {
        let lu = &self.lus[l];
        let mut out = [b' '; 32];
        let s = lu.serial();
        if !s.is_empty() {
            out[..s.len()].copy_from_slice(s);
            return out;
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (k, b) in lu.cfg.naa.iter().take(16).enumerate() {
            out[2 * k] = HEX[usize::from(b >> 4)];
            out[2 * k + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }

    fn gen_device_id(&self, i: usize, l: usize, p: &mut Payload<'_>) {
        let lu = &self.lus[l];
        let naa_len = match lu.cfg.naa[0] >> 4 {
            6 => 16,
            _ => 8,
        };
        // NAA designator of the LU (binary, association LU).
        p.put(&[0x01, 0x03, 0x00, naa_len as u8]);
        p.put(&lu.cfg.naa[..naa_len]);
        // T10 vendor ID designator: vendor + serial number (ASCII).
        let serial = self.serial_of(l);
        let slen = serial.iter().rposition(|&b| b != b' ').map_or(0, |k| k + 1);
        p.put(&[0x02, 0x01, 0x00, (8 + slen) as u8]);
        p.put(&self.cfg.vendor);
        p.put(&serial[..slen]);
        // Target port: relative port, port group, port name.
        let s = usize::from(self.cmds[i].session);
        let port = self.sessions.get(s).and_then(|x| self.port(x.port));
        if let Some(port) = port {
            let proto = port.cfg.protocol;
            let piv = proto != crate::ids::ProtocolId::None;
            let (code0, piv_bit) = if piv {
                (proto.code() << 4 | 0x01, 0x80)
            } else {
                (0x01, 0)
            };
            p.put(&[code0, piv_bit | 0x10 | 0x04, 0, 4, 0, 0]);
            p.u16(port.cfg.id.0);
            p.put(&[code0, piv_bit | 0x10 | 0x05, 0, 4, 0, 0]);
            p.u16(port.cfg.group.0);
            if let Some(name) = port.cfg.name {
                p.put(&[code0, piv_bit | 0x10 | 0x03, 0, 8]);
                p.u64(name);
            }
        }
        if lu.cfg.lu_group != 0 {
            p.put(&[0x01, 0x06, 0, 4, 0, 0]);
            p.u16(lu.cfg.lu_group);
        }
    }

    /// VPD page 8Fh (SPC-5 7.7.17): the third-party copy descriptors of
    /// the EXTENDED COPY (LID1) copy manager.
    fn gen_third_party_copy(&self, p: &mut Payload<'_>) {
        use crate::target::xcopy_limits as x;
        // Supported commands: 83h/00h, 84h/00h and 84h/03h (8 bytes + pad).
        p.put(&[0x00, 0x01, 0x00, 0x08]);
        p.put(&[7, 0x83, 1, 0x00, 0x84, 2, 0x00, 0x03]);
        // Parameter data.
        p.put(&[0x00, 0x04, 0x00, 0x1c]);
        p.zeros(4);
        p.u16(x::MAX_CSCD as u16);
        p.u16(x::MAX_SEGMENTS as u16);
        p.u32(self.xcopy_max_list() as u32);
        p.u32(0); // MAXIMUM INLINE DATA LENGTH
        p.zeros(12);
        // Supported descriptors: 02h, E4h.
        p.put(&[0x00, 0x08, 0x00, 0x04, 2, 0x02, 0xe4, 0]);
        // Supported CSCD descriptor IDs: none.
        p.put(&[0x00, 0x0c, 0x00, 0x04, 0, 0, 0, 0]);
        // General copy operations.
        p.put(&[0x80, 0x01, 0x00, 0x20]);
        p.u32(x::MAX_COPIES as u32); // TOTAL CONCURRENT COPIES
        p.u32(x::MAX_COPIES as u32); // MAXIMUM IDENTIFIED CONCURRENT COPIES
        p.u32(u32::MAX); // MAXIMUM SEGMENT LENGTH
        p.u8(9); // DATA SEGMENT GRANULARITY (log2)
        p.u8(0); // INLINE DATA GRANULARITY
        p.zeros(18);
    }

    /// Limits the buffer pool imposes: COMPARE AND WRITE holds 3 x N blocks.
    pub(crate) fn max_compare_write_blocks(&self, l: usize) -> u64 {
        let bs = u64::from(self.lus[l].cfg.block_size);
        (self.pool.capacity() / (3 * bs)).min(255)
    }

    /// WRITE ATOMIC buffers its data in the pool.
    pub(crate) fn max_atomic_blocks(&self, l: usize) -> u64 {
        let bs = u64::from(self.lus[l].cfg.block_size);
        let max = match self.lus[l].cfg.max_transfer_blocks {
            0 => 0xffff,
            n => u64::from(n).min(0xffff),
        };
        (self.pool.capacity() / 2 / bs).min(max)
    }

    /// UNMAP block descriptors one parameter list may carry.
    /// One descriptor of room is kept, so a list just over the limit is
    /// still received and refused with INVALID FIELD IN PARAMETER LIST.
    pub(crate) fn max_unmap_descriptors(&self) -> u64 {
        ((self.pool.capacity() - 8) / 16 - 1).min(4096)
    }

    fn gen_block_limits(&self, l: usize, p: &mut Payload<'_>) {
        let lu = &self.lus[l];
        p.u8(0); // WSNZ = 0: WRITE SAME with 0 blocks writes to the end
        p.u8(self.max_compare_write_blocks(l) as u8);
        // OPTIMAL TRANSFER LENGTH GRANULARITY: one physical block.
        p.u16(1 << lu.cfg.pb_exp);
        // MAXIMUM TRANSFER LENGTH: "no limit" is reported as the largest
        // value rather than 0, so it is never below the atomic limit.
        let max = match lu.cfg.max_transfer_blocks {
            0 => u32::MAX,
            n => n,
        };
        p.u32(max);
        p.u32(0); // OPTIMAL TRANSFER LENGTH
        p.u32(0); // MAXIMUM PREFETCH LENGTH: no limit
        if lu.cfg.thin {
            p.u32(u32::MAX); // MAXIMUM UNMAP LBA COUNT: no limit
            p.u32(self.max_unmap_descriptors() as u32);
            p.u32(lu.cfg.unmap_granularity);
            p.u32(0x8000_0000); // UGAVALID, alignment 0
        } else {
            p.zeros(16);
        }
        p.u64(0); // MAXIMUM WRITE SAME LENGTH: no limit
        p.u32(self.max_atomic_blocks(l) as u32);
        p.u32(0); // ATOMIC ALIGNMENT: none
        p.u32(0); // ATOMIC TRANSFER LENGTH GRANULARITY: none
        p.u32(0); // MAXIMUM ATOMIC TRANSFER LENGTH WITH ATOMIC BOUNDARY
        p.u32(0); // MAXIMUM ATOMIC BOUNDARY SIZE
    }

    // ------------------------------------------------------ REPORT LUNS

    pub(crate) fn exec_report_luns(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let select = c.cdb[2];
        let alloc = be(&c.cdb, (6, 4));
        if !matches!(select, 0x00 | 0x01 | 0x02 | 0x10 | 0x11 | 0x12) {
            return self.fail(i, invalid_cdb(2, 7));
        }
        if alloc < 16 {
            return self.fail(i, invalid_cdb(6, 7));
        }
        let s = usize::from(c.session);
        let group = self.sessions.get(s).map_or(0, |x| x.group);
        // Only SELECT REPORT 00h/02h/11h list the (non well-known) LUs we have.
        let list = matches!(select, 0x00 | 0x02 | 0x11);
        let step = self.respond_payload(i, alloc, |t, _, p| {
            let map = t.group_map(group);
            let n = if list {
                map.iter().filter(|e| e.in_use).count()
            } else {
                0
            };
            p.u32((n * 8) as u32);
            p.u32(0);
            // Ascending LUN order.
            let mut last: Option<u64> = None;
            for _ in 0..n {
                let next = map
                    .iter()
                    .filter(|e| e.in_use && last.is_none_or(|x| e.lun.0 > x))
                    .map(|e| e.lun.0)
                    .min();
                let Some(lun) = next else { break };
                p.u64(lun);
                last = Some(lun);
            }
            Ok(())
        });
        if self.cmds[i].sense.is_none() {
            for l in 0..self.lus.len() {
                self.clear_ua(s, l, UnitAttention::ReportedLunsDataChanged);
            }
        }
        step
    }

    // ------------------------------------------------------ MODE SENSE / SELECT

    /// A mode page of LU `l`.
    fn mode_page(&self, l: usize, page: u8, pc: PageControl) -> Option<ModePage> {
        let lu = &self.lus[l];
        let v = match pc {
            PageControl::Current => lu.mode,
            PageControl::Saved => lu.saved,
            PageControl::Default | PageControl::Changeable => crate::target::ModeValues {
                wce: lu.cfg.write_cache,
                d_sense: false,
                qerr: 0,
                tas: false,
                swp: false,
            },
        };
        let ch = pc == PageControl::Changeable;
        let mut b = [0u8; 20];
        let len = match page {
            0x01 => {
                b[0] = 0x81;
                b[1] = 0x0a;
                12
            }
            0x08 => {
                b[0] = 0x88;
                b[1] = 0x12;
                b[2] = if ch || v.wce { 0x04 } else { 0 };
                20
            }
            0x0a => {
                b[0] = 0x8a;
                b[1] = 0x0a;
                if ch {
                    b[2] = 0x04; // D_SENSE
                    b[3] = 0x06; // QERR
                    b[4] = 0x08; // SWP
                    b[5] = 0x40; // TAS
                } else {
                    b[2] = if v.d_sense { 0x04 } else { 0 };
                    b[3] = (v.qerr & 0x03) << 1;
                    b[4] = if v.swp { 0x08 } else { 0 };
                    b[5] = if v.tas { 0x40 } else { 0 };
                    b[8..10].copy_from_slice(&0xffffu16.to_be_bytes()); // BUSY TIMEOUT PERIOD: unlimited
                }
                12
            }
            0x1c => {
                b[0] = 0x9c;
                b[1] = 0x0a;
                if !ch {
                    b[2] = 0x08; // DEXCPT: informational exceptions disabled
                }
                12
            }
            _ => return None,
        };
        Some(ModePage { bytes: b, len })
    }

    pub(crate) fn exec_mode_sense(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let ten = c.cdb[0] == 0x5a;
        let dbd = c.cdb[1] & 0x08 != 0;
        let llbaa = ten && c.cdb[1] & 0x10 != 0;
        let pc = match c.cdb[2] >> 6 {
            0 => PageControl::Current,
            1 => PageControl::Changeable,
            2 => PageControl::Default,
            _ => PageControl::Saved,
        };
        let (page, subpage) = (c.cdb[2] & 0x3f, c.cdb[3]);
        let alloc = if ten {
            be(&c.cdb, (7, 2))
        } else {
            u64::from(c.cdb[4])
        };
        let Some(l) = self.cmd_lu(i) else {
            return self.fail(i, SenseReason::LunNotSupported);
        };
        let known = if page == 0x3f {
            true
        } else {
            MODE_PAGES.contains(&page)
        };
        if !known {
            return self.fail(i, invalid_cdb(2, 5));
        }
        if subpage != 0 && !(subpage == 0xff && (page == 0x3f || MODE_PAGES.contains(&page))) {
            return self.fail(i, invalid_cdb(3, 7));
        }
        let wp = self.write_protected(i);
        self.respond_payload(i, alloc, move |t, _, p| {
            let lu = &t.lus[l];
            // Header.
            if ten {
                p.u16(0);
                p.u8(0);
                p.u8(if wp { 0x80 } else { 0 } | 0x10);
                p.u8(if llbaa && !dbd { 0x01 } else { 0 });
                p.u8(0);
                p.u16(if dbd {
                    0
                } else if llbaa {
                    16
                } else {
                    8
                });
            } else {
                p.u8(0);
                p.u8(0);
                p.u8(if wp { 0x80 } else { 0 } | 0x10);
                p.u8(if dbd { 0 } else { 8 });
            }
            // Block descriptor.
            if !dbd {
                let bs = lu.cfg.block_size;
                if llbaa {
                    p.u64(lu.cfg.blocks);
                    p.u32(0);
                    p.u32(bs);
                } else {
                    p.u32(u32::try_from(lu.cfg.blocks).unwrap_or(u32::MAX));
                    p.u32(bs & 0x00ff_ffff);
                }
            }
            for &pg in MODE_PAGES.iter().filter(|&&x| page == 0x3f || x == page) {
                if let Some(mp) = t.mode_page(l, pg, pc) {
                    p.put(&mp.bytes[..mp.len]);
                }
            }
            let total = p.pos();
            if ten {
                p.patch(0, &((total - 2) as u16).to_be_bytes());
            } else {
                p.patch(0, &[(total - 1).min(255) as u8]);
            }
            Ok(())
        })
    }

    pub(crate) fn exec_mode_select<T: Transport>(&mut self, i: usize, t: &mut T) -> Step {
        let c = &self.cmds[i];
        let ten = c.cdb[0] == 0x55;
        let (pf, sp) = (c.cdb[1] & 0x10 != 0, c.cdb[1] & 0x01 != 0);
        let len = if ten {
            be(&c.cdb, (7, 2))
        } else {
            u64::from(c.cdb[4])
        };
        let Some(l) = self.cmd_lu(i) else {
            return self.fail(i, SenseReason::LunNotSupported);
        };
        if len > 0 && !pf {
            return self.fail(i, invalid_cdb(1, 4));
        }
        let n = match self.receive_params(i, t, len, len) {
            Ok(n) => n,
            Err(step) => return step,
        };
        if len == 0 {
            return self.good(i);
        }
        let mut data = [0u8; 128];
        if n > data.len() {
            return self.fail(i, SenseReason::ParameterListLengthError);
        }
        check!(self, i, self.read_params(i, 0, &mut data[..n]));
        let data = &data[..n];
        let hdr = if ten { 8 } else { 4 };
        if n < hdr {
            return self.fail(i, SenseReason::ParameterListLengthError);
        }
        if data[if ten { 2 } else { 1 }] != 0 {
            return self.fail(i, invalid_param(if ten { 2 } else { 1 }, None));
        }
        let bdl = if ten {
            be_at(data, 6, 2) as usize
        } else {
            usize::from(data[3])
        };
        let long = ten && data[4] & 0x01 != 0;
        let mut at = hdr;
        if bdl != 0 {
            let want = if long { 16 } else { 8 };
            if bdl != want || n < at + bdl {
                return self.fail(i, SenseReason::ParameterListLengthError);
            }
            let lu = &self.lus[l];
            let (blocks, bs, bs_at) = if long {
                (be_at(data, at, 8), be_at(data, at + 12, 4), at + 12)
            } else {
                (be_at(data, at, 4), be_at(data, at + 5, 3), at + 5)
            };
            if bs != u64::from(lu.cfg.block_size) {
                return self.fail(i, invalid_param(bs_at, None));
            }
            let cur = if long {
                lu.cfg.blocks
            } else {
                lu.cfg.blocks.min(u64::from(u32::MAX))
            };
            if blocks != 0 && blocks != cur {
                return self.fail(i, invalid_param(at, None));
            }
            at += bdl;
        }
        let mut new = self.lus[l].mode;
        while at < n {
            let code = data[at] & 0x3f;
            if data[at] & 0x40 != 0 {
                return self.fail(i, invalid_param(at, Some(6)));
            }
            let Some(cur) = self.mode_page(l, code, PageControl::Current) else {
                return self.fail(i, invalid_param(at, Some(5)));
            };
            let ch = self
                .mode_page(l, code, PageControl::Changeable)
                .map_or([0; 20], |p| p.bytes);
            if at + 2 > n || usize::from(data[at + 1]) + 2 != cur.len {
                return self.fail(i, invalid_param(at + 1, None));
            }
            if at + cur.len > n {
                return self.fail(i, SenseReason::ParameterListLengthError);
            }
            let pg = &data[at..at + cur.len];
            for k in 2..cur.len {
                let bad = (pg[k] ^ cur.bytes[k]) & !ch[k];
                if bad != 0 {
                    let bit = 7 - bad.leading_zeros() as u8;
                    return self.fail(i, invalid_param(at + k, Some(bit)));
                }
            }
            match code {
                0x08 => new.wce = pg[2] & 0x04 != 0,
                0x0a => {
                    let qerr = (pg[3] >> 1) & 0x03;
                    if qerr == 0b10 {
                        return self.fail(i, invalid_param(at + 3, Some(2)));
                    }
                    new.d_sense = pg[2] & 0x04 != 0;
                    new.qerr = qerr;
                    new.swp = pg[4] & 0x08 != 0;
                    new.tas = pg[5] & 0x40 != 0;
                }
                _ => {}
            }
            at += cur.len;
        }
        let lu = &mut self.lus[l];
        let changed = new != lu.mode;
        lu.mode = new;
        if sp {
            lu.saved = new;
        }
        self.lu_changed(l);
        if changed {
            let s = usize::from(self.cmds[i].session);
            self.set_ua_all(l, UnitAttention::ModeParametersChanged, Some(s));
        }
        self.good(i)
    }

    // ------------------------------------------------------ LOG SENSE

    pub(crate) fn exec_log_sense(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let (page, sub) = (c.cdb[2] & 0x3f, c.cdb[3]);
        let pointer = be(&c.cdb, (5, 2)) as u16;
        let alloc = be(&c.cdb, (7, 2));
        let Some(l) = self.cmd_lu(i) else {
            return self.fail(i, SenseReason::LunNotSupported);
        };
        match (page, sub) {
            (0x00, 0x00) | (0x00, 0xff) | (0x02, 0x00) | (0x03, 0x00) => {}
            (0x00 | 0x02 | 0x03, _) => return self.fail(i, invalid_cdb(3, 7)),
            _ => return self.fail(i, invalid_cdb(2, 5)),
        }
        if page != 0 && pointer > 6 {
            return self.fail(i, invalid_cdb(5, 7));
        }
        self.respond_payload(i, alloc, move |t, _, p| {
            let st = t.lus[l].stats;
            p.u8(if sub == 0xff { 0x40 } else { page });
            p.u8(sub);
            p.u16(0);
            match (page, sub) {
                (0x00, 0x00) => p.put(&[0x00, 0x02, 0x03]),
                (0x00, _) => p.put(&[0x00, 0x00, 0x00, 0xff, 0x02, 0x00, 0x03, 0x00]),
                _ => {
                    let bytes = if page == 0x02 {
                        st.write_bytes
                    } else {
                        st.read_bytes
                    };
                    for code in pointer..=6u16 {
                        p.u16(code);
                        p.u8(0x00); // bounded data counter
                        if code == 5 {
                            p.u8(8);
                            p.u64(bytes);
                        } else {
                            p.u8(4);
                            p.u32(0);
                        }
                    }
                }
            }
            let len = (p.pos() - 4) as u16;
            p.patch(2, &len.to_be_bytes());
            Ok(())
        })
    }

    // ------------------------------------------------------ REPORT SUPPORTED ...

    pub(crate) fn exec_rsoc(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let rctd = c.cdb[2] & 0x80 != 0;
        let option = c.cdb[2] & 0x07;
        let (req_op, req_sa) = (c.cdb[3], be(&c.cdb, (4, 2)));
        let alloc = be(&c.cdb, (6, 4));
        let one = match option {
            0 => None,
            1 => {
                if cdb::has_service_action(req_op) {
                    return self.fail(i, invalid_cdb(3, 7));
                }
                Some(cdb::lookup_op(req_op, 0))
            }
            2 => {
                if !cdb::has_service_action(req_op) {
                    return self.fail(i, invalid_cdb(3, 7));
                }
                Some(
                    u8::try_from(req_sa)
                        .ok()
                        .and_then(|sa| cdb::lookup_op(req_op, sa)),
                )
            }
            3 => Some(if cdb::has_service_action(req_op) {
                u8::try_from(req_sa)
                    .ok()
                    .and_then(|sa| cdb::lookup_op(req_op, sa))
            } else {
                cdb::lookup_op(req_op, 0)
            }),
            _ => return self.fail(i, invalid_cdb(2, 2)),
        };
        self.respond_payload(i, alloc, move |_, _, p| {
            match one {
                None => {
                    let per = if rctd { 20 } else { 8 };
                    p.u32((all_ops().len() * per) as u32);
                    for op in all_ops() {
                        p.u8(op.opcode);
                        p.u8(0);
                        p.u16(op.sa.map_or(0, u16::from));
                        p.u8(0);
                        p.u8(if rctd { 0x02 } else { 0 } | if op.sa.is_some() { 0x01 } else { 0 });
                        p.u16(u16::from(op.cdb_len));
                        if rctd {
                            timeouts(op, p);
                        }
                    }
                }
                Some(None) => {
                    p.u8(0);
                    p.u8(0x01); // not supported
                    p.u16(0);
                }
                Some(Some(op)) => {
                    p.u8(0);
                    p.u8(if rctd { 0x80 } else { 0 } | 0x03); // supported per standard
                    p.u16(u16::from(op.cdb_len));
                    let mut usage = op.usage;
                    usage[0] = op.opcode;
                    if let Some(sa) = op.sa {
                        usage[1] = (usage[1] & !0x1f) | sa;
                    }
                    p.put(&usage[..usize::from(op.cdb_len)]);
                    if rctd {
                        timeouts(op, p);
                    }
                }
            }
            Ok(())
        })
    }

    pub(crate) fn exec_rstmf(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let repd = c.cdb[2] & 0x80 != 0;
        let alloc = be(&c.cdb, (6, 4));
        self.respond_payload(i, alloc, move |_, _, p| {
            // ATS ATSS CACAS CTSS LURS QTS TRS; QUAS QTSS ITNRS.
            p.u8(0x80 | 0x40 | 0x20 | 0x10 | 0x08 | 0x04 | 0x02);
            p.u8(0x04 | 0x02 | 0x01);
            p.u8(0);
            if repd {
                p.u8(0x0c);
                p.zeros(12);
            } else {
                p.u8(0);
            }
            Ok(())
        })
    }

    pub(crate) fn exec_report_tpg(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let format = c.cdb[1] >> 5;
        let alloc = be(&c.cdb, (6, 4));
        if format > 1 {
            return self.fail(i, invalid_cdb(1, 7));
        }
        self.respond_payload(i, alloc, move |t, _, p| {
            p.u32(0);
            if format == 1 {
                p.u8(0x10); // FORMAT TYPE 001b
                p.u8(0); // IMPLICIT TRANSITION TIME
                p.u16(0);
            }
            let ports = &t.ports;
            for (k, port) in ports.iter().enumerate().filter(|(_, x)| x.in_use) {
                let g = port.cfg.group;
                if ports[..k].iter().any(|x| x.in_use && x.cfg.group == g) {
                    continue; // group listed already
                }
                p.u8(port.state.code());
                p.u8(0x0f); // AO_SUP AN_SUP S_SUP U_SUP
                p.u16(g.0);
                p.u8(0);
                p.u8(0); // STATUS CODE
                p.u8(0);
                let members = ports.iter().filter(|x| x.in_use && x.cfg.group == g);
                p.u8(members.clone().count() as u8);
                for m in members {
                    p.u16(0);
                    p.u16(m.cfg.id.0);
                }
            }
            let hdr = if format == 1 { 8 } else { 4 };
            let _ = hdr;
            let len = (p.pos() - 4) as u32;
            p.patch(0, &len.to_be_bytes());
            Ok(())
        })
    }

    // ------------------------------------------------------ RESERVE / RELEASE

    pub(crate) fn exec_reserve(&mut self, i: usize) -> Step {
        let Some(l) = self.cmd_lu(i) else {
            return self.fail(i, SenseReason::LunNotSupported);
        };
        let s = self.cmds[i].session;
        let lu = &mut self.lus[l];
        if lu.pr.has_registrations() {
            return self.finish(i, crate::transport::ScsiStatus::ReservationConflict);
        }
        // Held by another nexus is refused in the enabled-state check.
        lu.res2 = s;
        self.lu_changed(l);
        self.good(i)
    }

    pub(crate) fn exec_release(&mut self, i: usize) -> Step {
        let Some(l) = self.cmd_lu(i) else {
            return self.fail(i, SenseReason::LunNotSupported);
        };
        let s = self.cmds[i].session;
        let lu = &mut self.lus[l];
        if lu.pr.has_registrations() {
            // SPC-5 5.13.3: with registrations, RELEASE conflicts too.
            return self.finish(i, crate::transport::ScsiStatus::ReservationConflict);
        }
        if lu.res2 == s {
            lu.res2 = NIL;
        }
        self.lu_changed(l);
        self.good(i)
    }
}

fn timeouts(op: &OpInfo, p: &mut Payload<'_>) {
    p.u16(0x0a);
    p.u8(0);
    p.u8(0);
    p.u32(op.timeouts.0);
    p.u32(op.timeouts.1);
}

impl Target<'_> {
    /// Bytes a data-in command may carry: the expected data-in length.
    #[allow(dead_code)]
    pub(crate) fn expected_in(&self, i: usize) -> u64 {
        self.cmds[i].expected(DataDirection::In)
    }
}
