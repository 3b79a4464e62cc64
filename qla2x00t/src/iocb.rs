//! Building the request IOCBs the driver sends, in local 64-byte buffers that
//! are copied into the ring afterwards (STYLE.md S3), with `rscst-fw`'s
//! Reprs for every byte.
//!
//! Data CTIO7s (reference §6.2, §7.3, §9.2–9.4): a transfer is cut into
//! pieces of at most `max_ctio_bytes`; each piece is one CTIO7 with its first
//! DSD inline and the rest in CONTINUE_A64 entries in the following slots.

use rscst_core::Seg;
use rscst_fw::fc::fcp::{DataDir, Residual};
use rscst_fw::iocb::{
    ContinueA64Repr, Ctio7Exchange, Ctio7Flags, Ctio7Repr, DSDS_PER_CONTINUATION, Dsd64,
    MarkerRepr, ctio7_entry_count,
};
use rscst_fw::{ExchangeAddr, NportHandle, OxId};

use crate::isp::Exchange;
use crate::ring::Entry;

/// MARKER (0x04), modifier 2 = sync all, skip handle (reference §7.12).
pub(crate) fn marker_sync_all(vp_index: u8) -> Entry {
    let mut e = [0u8; 64];
    let mut m = MarkerRepr::sync_all(vp_index);
    m.handle = crate::handle::SKIP_HANDLE;
    // A 64-byte buffer always fits.
    let _ = m.emit_bytes(&mut e);
    e
}

/// The CTIO7 view of an exchange.
pub(crate) fn ctio_exchange(x: &Exchange) -> Ctio7Exchange {
    Ctio7Exchange {
        nport_handle: NportHandle(x.nport),
        initiator_id: x.s_id,
        exchange_addr: ExchangeAddr(x.addr),
        ox_id: OxId(x.ox_id),
        attr: x.attr,
        vp_index: x.vp,
    }
}

/// Emit a CTIO7 repr into a fresh entry.
pub(crate) fn emit_ctio(c: &Ctio7Repr) -> Entry {
    let mut e = [0u8; 64];
    // Reprs built by this crate always have a valid mode and fit 64 bytes.
    let _ = c.emit_bytes(&mut e);
    e
}

/// Most DSDs one piece carries: every segment of a round (the core sends
/// at most `MAX_SEGS`) plus one from a split.
pub(crate) const PIECE_DSDS: usize = rscst_core::MAX_SEGS + 1;

/// One CTIO7's worth of a transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece {
    pub(crate) offset: u32,
    pub(crate) len: u32,
    pub(crate) dsds: [Dsd64; PIECE_DSDS],
    pub(crate) n: usize,
}

impl Piece {
    /// Ring entries this piece needs.
    pub(crate) fn entries(&self) -> usize {
        ctio7_entry_count(self.n)
    }
}

/// Cuts a scatter list into pieces of at most `max` bytes (relative offset
/// `offset` onwards). Zero-length segments are skipped.
pub(crate) struct Pieces<'a> {
    segs: &'a [Seg],
    seg: usize,
    within: u32,
    offset: u32,
    max: u32,
}

impl<'a> Pieces<'a> {
    pub(crate) fn new(segs: &'a [Seg], offset: u32, max: u32) -> Pieces<'a> {
        Pieces {
            segs,
            seg: 0,
            within: 0,
            offset,
            max: max.max(1),
        }
    }
}

impl Iterator for Pieces<'_> {
    type Item = Piece;
    fn next(&mut self) -> Option<Piece> {
        let mut p = Piece {
            offset: self.offset,
            len: 0,
            dsds: [Dsd64::default(); PIECE_DSDS],
            n: 0,
        };
        while p.len < self.max && p.n < PIECE_DSDS {
            let Some(s) = self.segs.get(self.seg) else {
                break;
            };
            let left = s.len - self.within;
            if left == 0 {
                self.seg += 1;
                self.within = 0;
                continue;
            }
            let take = left.min(self.max - p.len);
            p.dsds[p.n] = Dsd64 {
                address: s.addr.wrapping_add(self.within as u64),
                length: take,
            };
            p.n += 1;
            p.len += take;
            self.within += take;
            if self.within == s.len {
                self.seg += 1;
                self.within = 0;
            }
        }
        if p.len == 0 {
            return None;
        }
        self.offset = self.offset.wrapping_add(p.len);
        Some(p)
    }
}

/// Entries needed for every piece of a transfer.
pub(crate) fn entries_for(segs: &[Seg], offset: u32, max: u32) -> (usize, usize) {
    let mut entries = 0;
    let mut pieces = 0;
    for p in Pieces::new(segs, offset, max) {
        entries += p.entries();
        pieces += 1;
    }
    (entries, pieces)
}

/// Build a data CTIO7 for `piece` plus its continuation entries into `out`;
/// returns the number of entries written.
pub(crate) fn data_ctio(
    x: &Exchange,
    handle: u32,
    dir: DataDir,
    piece: &Piece,
    extra_flags: Ctio7Flags,
    timeout: u16,
    out: &mut [Entry; 3],
) -> usize {
    let xc = ctio_exchange(x);
    let dsds = &piece.dsds[..piece.n];
    let Ok(mut c) = Ctio7Repr::data(
        &xc,
        handle,
        dir,
        piece.offset,
        piece.len,
        dsds[0],
        piece.n as u16,
    ) else {
        return 0;
    };
    c.flags.insert(extra_flags);
    c.timeout = timeout;
    out[0] = emit_ctio(&c);
    let mut n = 1;
    for cont in ContinueA64Repr::for_dsds(dsds) {
        if n >= out.len() {
            break;
        }
        let mut e = [0u8; 64];
        let _ = cont.emit_bytes(&mut e);
        out[n] = e;
        n += 1;
    }
    n
}

const _: () = assert!(ctio7_entry_count(PIECE_DSDS) <= 3);
const _: () = assert!(PIECE_DSDS <= 1 + 2 * DSDS_PER_CONTINUATION);

/// The core's residual as FCP's.
pub(crate) fn residual(r: rscst_core::Residual) -> Residual {
    match r {
        rscst_core::Residual::None => Residual::None,
        rscst_core::Residual::Under(n) => Residual::Under(n),
        rscst_core::Residual::Over(n) => Residual::Over(n),
    }
}

/// Sense data trimmed to what a mode-1 CTIO7 carries (24 bytes): fixed
/// format is cut (its fields of interest are in the first 18 bytes) with
/// ADDITIONAL SENSE LENGTH fixed up; descriptor format keeps whole
/// descriptors only.
pub(crate) fn fit_sense(sense: &[u8], out: &mut [u8; 24]) -> usize {
    const MAX: usize = 24;
    if sense.len() <= MAX {
        out[..sense.len()].copy_from_slice(sense);
        return sense.len();
    }
    let code = sense[0] & 0x7F;
    if code == 0x72 || code == 0x73 {
        // Descriptor format: header 8 bytes, then descriptors (type, len).
        out[..8].copy_from_slice(&sense[..8]);
        let mut at = 8;
        while at + 2 <= sense.len() {
            let dlen = 2 + sense[at + 1] as usize;
            if at + dlen > MAX || at + dlen > sense.len() {
                break;
            }
            out[at..at + dlen].copy_from_slice(&sense[at..at + dlen]);
            at += dlen;
        }
        out[7] = (at - 8) as u8;
        at
    } else {
        out.copy_from_slice(&sense[..MAX]);
        if out.len() > 7 {
            out[7] = (MAX - 8) as u8;
        }
        MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn pieces_split_by_bytes_and_segments() {
        let segs = [
            Seg {
                addr: 0x1000,
                len: 100,
            },
            Seg {
                addr: 0x9000,
                len: 0,
            },
            Seg {
                addr: 0x2000,
                len: 300,
            },
        ];
        let p: Vec<Piece> = Pieces::new(&segs, 50, 1 << 20).collect();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].offset, p[0].len, p[0].n), (50, 400, 2));
        assert_eq!(
            p[0].dsds[1],
            Dsd64 {
                address: 0x2000,
                length: 300
            }
        );
        let p: Vec<Piece> = Pieces::new(&segs, 0, 128).collect();
        let got: Vec<(u32, u32, usize)> = p.iter().map(|p| (p.offset, p.len, p.n)).collect();
        assert_eq!(
            got,
            [(0, 128, 2), (128, 128, 1), (256, 128, 1), (384, 16, 1)]
        );
        assert_eq!(
            p[0].dsds[1],
            Dsd64 {
                address: 0x2000,
                length: 28
            }
        );
        assert_eq!(
            p[1].dsds[0],
            Dsd64 {
                address: 0x2000 + 28,
                length: 128
            }
        );
        assert_eq!(
            entries_for(&segs, 0, 128),
            (5, 4),
            "2 DSDs need a continuation"
        );
        assert!(Pieces::new(&[], 0, 10).next().is_none());
    }

    #[test]
    fn data_ctio_with_continuations() {
        let segs: Vec<Seg> = (0..8)
            .map(|i| Seg {
                addr: 0x10_0000 * (i + 1),
                len: 512,
            })
            .collect();
        let p = Pieces::new(&segs, 0, 1 << 20).next().unwrap();
        assert_eq!(p.entries(), 3);
        let x = Exchange {
            addr: 0x55,
            nport: 7,
            s_id: rscst_fw::PortId::new(0x010203),
            ox_id: 0x1234,
            attr: 3,
            vp: 0,
            fcp_dl: 4096,
        };
        let mut out = [[0u8; 64]; 3];
        let n = data_ctio(
            &x,
            0x2000_0001,
            DataDir::DataIn,
            &p,
            Ctio7Flags::SEND_STATUS,
            10,
            &mut out,
        );
        assert_eq!(n, 3);
        let c = Ctio7Repr::parse_bytes(&out[0]).unwrap();
        assert_eq!((c.entry_count, c.dseg_count), (3, 8));
        assert!(
            c.flags
                .contains(Ctio7Flags::DATA_IN | Ctio7Flags::SEND_STATUS)
        );
        assert_eq!(c.attr, 3);
        assert_eq!(c.exchange_addr, ExchangeAddr(0x55));
        assert_eq!(out[1][0], 0x0A);
        assert_eq!(out[2][0], 0x0A);
        let c2 = ContinueA64Repr::parse_bytes(&out[2]).unwrap();
        assert_eq!(
            c2.dsds[1],
            Dsd64 {
                address: 0x80_0000,
                length: 512
            }
        );
    }

    #[test]
    fn sense_fits_24_bytes() {
        let mut out = [0u8; 24];
        let fixed = [0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0];
        assert_eq!(fit_sense(&fixed, &mut out), 18);
        assert_eq!(out[..18], fixed);
        // Descriptor format of 28 bytes: header + 12-byte descriptor + 8-byte one.
        let mut d = [0u8; 28];
        d[0] = 0x72;
        d[7] = 20;
        d[8] = 0x00;
        d[9] = 10;
        d[20] = 0x02;
        d[21] = 6;
        assert_eq!(fit_sense(&d, &mut out), 20);
        assert_eq!(out[7], 12);
        let mut long = [0u8; 32];
        long[0] = 0x70;
        long[7] = 24;
        assert_eq!(fit_sense(&long, &mut out), 24);
        assert_eq!(out[7], 16);
    }
}
