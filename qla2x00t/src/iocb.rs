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
    ContinueA64, ContinueA64Repr, Ctio7, Ctio7Exchange, Ctio7Flags, Ctio7Repr,
    DSDS_PER_CONTINUATION, DSDS_PER_CTIO7, Dsd64, MarkerRepr, ctio7_entry_count,
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
#[inline]
pub(crate) fn emit_ctio(c: &Ctio7Repr) -> Entry {
    let mut e = [0u8; 64];
    emit_ctio_into(c, &mut e);
    e
}

/// Emit a CTIO7 repr into `e` (every byte written). Through the view over a
/// fixed-size entry, so the field writes need no bounds checks.
#[inline]
pub(crate) fn emit_ctio_into(c: &Ctio7Repr, e: &mut Entry) {
    // Reprs built by this crate always have a valid mode and fit 64 bytes.
    let _ = c.emit(&mut Ctio7::new_unchecked(e));
}

/// Most DSDs one piece carries: every segment of a round (the core sends
/// at most `MAX_SEGS`) plus one from a split.
pub(crate) const PIECE_DSDS: usize = rscst_core::MAX_SEGS + 1;

/// One CTIO7's worth of a transfer: its place in the command's data and
/// where its bytes start in the scatter list (its DSDs are walked from there
/// by [`Piece::dsds`], not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) offset: u32,
    pub(crate) len: u32,
    /// DSDs (non-empty segment parts) in the piece.
    pub(crate) n: usize,
    /// The segment the piece starts in, and the byte within it.
    seg: usize,
    within: u32,
}

impl Piece {
    /// Ring entries this piece needs.
    pub(crate) fn entries(&self) -> usize {
        ctio7_entry_count(self.n)
    }

    /// The piece's DSDs, from the scatter list it was cut from.
    pub(crate) fn dsds<'a>(&self, segs: &'a [Seg]) -> impl Iterator<Item = Dsd64> + 'a {
        let mut seg = self.seg;
        let mut within = self.within;
        let mut left = self.len;
        core::iter::from_fn(move || {
            while left > 0 {
                let s = segs.get(seg)?;
                let avail = s.len - within;
                if avail == 0 {
                    seg += 1;
                    within = 0;
                    continue;
                }
                let take = avail.min(left);
                let d = Dsd64 {
                    address: s.addr.wrapping_add(within as u64),
                    length: take,
                };
                left -= take;
                within += take;
                if within == s.len {
                    seg += 1;
                    within = 0;
                }
                return Some(d);
            }
            None
        })
    }
}

/// Cuts a scatter list into pieces of at most `max` bytes (relative offset
/// `offset` onwards). Zero-length segments are skipped; a piece has at most
/// [`PIECE_DSDS`] DSDs.
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
    #[inline]
    fn next(&mut self) -> Option<Piece> {
        let mut p = Piece {
            offset: self.offset,
            len: 0,
            n: 0,
            seg: self.seg,
            within: self.within,
        };
        while p.len < self.max && p.n < PIECE_DSDS {
            let Some(s) = self.segs.get(self.seg) else {
                break;
            };
            let left = s.len - self.within;
            if left == 0 {
                self.seg += 1;
                self.within = 0;
                if p.n == 0 {
                    // The piece starts at the next segment.
                    p.seg = self.seg;
                    p.within = 0;
                }
                continue;
            }
            let take = left.min(self.max - p.len);
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

/// Entries needed for every piece of a transfer, and the number of pieces.
#[inline]
pub(crate) fn entries_for(segs: &[Seg], offset: u32, max: u32) -> (usize, usize) {
    let mut entries = 0;
    let mut pieces = 0;
    for p in Pieces::new(segs, offset, max) {
        entries += p.entries();
        pieces += 1;
    }
    (entries, pieces)
}

/// The one DSD of a transfer of one non-empty segment of at most `max` bytes
/// (the one piece [`Pieces`] would cut), or `None` for any other transfer.
#[inline]
pub(crate) fn single_dsd(segs: &[Seg], max: u32) -> Option<Dsd64> {
    match segs {
        [s] if s.len != 0 && s.len <= max.max(1) => Some(Dsd64 {
            address: s.addr,
            length: s.len,
        }),
        _ => None,
    }
}

/// Build the data CTIO7 of a one-DSD transfer (see [`single_dsd`]) at
/// relative offset `offset` into `e`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn data_ctio_one(
    x: &Exchange,
    handle: u32,
    dir: DataDir,
    offset: u32,
    dsd: Dsd64,
    extra_flags: Ctio7Flags,
    timeout: u16,
    e: &mut Entry,
) {
    let Ok(mut c) = Ctio7Repr::data(&ctio_exchange(x), handle, dir, offset, dsd.length, dsd, 1)
    else {
        return;
    };
    c.flags.insert(extra_flags);
    c.timeout = timeout;
    emit_ctio_into(&c, e);
}

/// Build a data CTIO7 for `piece` (cut from `segs`) plus its continuation
/// entries into `out`; returns the number of entries written.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn data_ctio(
    x: &Exchange,
    handle: u32,
    dir: DataDir,
    piece: &Piece,
    segs: &[Seg],
    extra_flags: Ctio7Flags,
    timeout: u16,
    out: &mut [Entry; 3],
) -> usize {
    let xc = ctio_exchange(x);
    let mut dsds = piece.dsds(segs);
    let Some(first) = dsds.next() else {
        return 0;
    };
    let Ok(mut c) = Ctio7Repr::data(
        &xc,
        handle,
        dir,
        piece.offset,
        piece.len,
        first,
        piece.n as u16,
    ) else {
        return 0;
    };
    c.flags.insert(extra_flags);
    c.timeout = timeout;
    let [ctio, conts @ ..] = out;
    emit_ctio_into(&c, ctio);
    let mut n = 1;
    if piece.n > DSDS_PER_CTIO7 {
        for e in conts.iter_mut() {
            let mut cont = ContinueA64Repr::default();
            let mut k = 0;
            for (slot, d) in cont.dsds.iter_mut().zip(dsds.by_ref()) {
                *slot = d;
                k += 1;
            }
            if k == 0 {
                break;
            }
            let _ = cont.emit(&mut ContinueA64::new_unchecked(&mut *e));
            n += 1;
        }
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
        let dsds = |p: &Piece| p.dsds(&segs).collect::<Vec<_>>();
        let p: Vec<Piece> = Pieces::new(&segs, 50, 1 << 20).collect();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].offset, p[0].len, p[0].n), (50, 400, 2));
        assert_eq!(
            dsds(&p[0]),
            [
                Dsd64 {
                    address: 0x1000,
                    length: 100
                },
                Dsd64 {
                    address: 0x2000,
                    length: 300
                }
            ]
        );
        let p: Vec<Piece> = Pieces::new(&segs, 0, 128).collect();
        let got: Vec<(u32, u32, usize)> = p.iter().map(|p| (p.offset, p.len, p.n)).collect();
        assert_eq!(
            got,
            [(0, 128, 2), (128, 128, 1), (256, 128, 1), (384, 16, 1)]
        );
        assert_eq!(
            dsds(&p[0])[1],
            Dsd64 {
                address: 0x2000,
                length: 28
            }
        );
        assert_eq!(
            dsds(&p[1]),
            [Dsd64 {
                address: 0x2000 + 28,
                length: 128
            }]
        );
        assert_eq!(
            dsds(&p[3]),
            [Dsd64 {
                address: 0x2000 + 284,
                length: 16
            }]
        );
        // Every piece's DSDs add up to its length, and the pieces to the data.
        for max in [1, 7, 100, 128, 399, 400, 1 << 20] {
            let p: Vec<Piece> = Pieces::new(&segs, 0, max).collect();
            for x in &p {
                let d = dsds(x);
                assert_eq!(d.len(), x.n, "max {max}");
                assert_eq!(d.iter().map(|d| d.length).sum::<u32>(), x.len);
                assert!(d.iter().all(|d| d.length > 0));
            }
            assert_eq!(p.iter().map(|x| x.len).sum::<u32>(), 400);
        }
        // A piece starting after an empty segment starts in the next one.
        let lead = [
            Seg {
                addr: 0x5000,
                len: 0,
            },
            Seg {
                addr: 0x6000,
                len: 8,
            },
        ];
        let p = Pieces::new(&lead, 0, 64).next().unwrap();
        assert_eq!(
            p.dsds(&lead).collect::<Vec<_>>(),
            [Dsd64 {
                address: 0x6000,
                length: 8
            }]
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
            &segs,
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
    fn one_segment_fast_path_matches_the_general_cut() {
        let x = Exchange {
            addr: 0x77,
            nport: 3,
            s_id: rscst_fw::PortId::new(0x0a0b0c),
            ox_id: 0x4321,
            attr: 1,
            vp: 0,
            fcp_dl: 512,
        };
        let cases = [(512, 4096, 0), (4096, 4096, 8192), (1, 1, 3), (513, 512, 0)];
        let dirs = [DataDir::DataIn, DataDir::DataOut];
        let flags = [Ctio7Flags::SEND_STATUS, Ctio7Flags::empty()];
        for ((len, max, offset), (dir, (f, (attr, vp)))) in cases.into_iter().flat_map(|c| {
            dirs.into_iter().flat_map(move |d| {
                flags
                    .into_iter()
                    .flat_map(move |f| [(1u8, 0u8), (0x1F, 5)].map(|a| (c, (d, (f, a)))))
            })
        }) {
            let x = Exchange { attr, vp, ..x };
            let segs = [Seg {
                addr: 0x1234_5000,
                len,
            }];
            let Some(dsd) = single_dsd(&segs, max) else {
                assert!(len > max, "only a segment larger than a CTIO7 is refused");
                assert_eq!(entries_for(&segs, offset, max).1, 2);
                continue;
            };
            // Every byte written: a buffer of garbage comes out equal.
            let mut one = [0x5Au8; 64];
            data_ctio_one(&x, 7, dir, offset, dsd, f, 10, &mut one);
            let p: Vec<Piece> = Pieces::new(&segs, offset, max).collect();
            assert_eq!(p.len(), 1);
            let mut out = [[0xA5u8; 64]; 3];
            let n = data_ctio(&x, 7, dir, &p[0], &segs, f, 10, &mut out);
            assert_eq!((n, one), (1, out[0]));
        }
        assert!(single_dsd(&[], 512).is_none());
        assert!(single_dsd(&[Seg { addr: 1, len: 0 }], 512).is_none());
        let two = [Seg { addr: 1, len: 8 }, Seg { addr: 2, len: 8 }];
        assert!(single_dsd(&two, 512).is_none());
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
