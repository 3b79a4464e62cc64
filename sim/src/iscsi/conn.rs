//! Per-connection state: the transmit buffer, PDU framing (RFC 7143 §11.2: BHS, AHS,
//! header digest, padded data segment, data digest), the session state of the
//! connection's session, and the tasks it carries.
//!
//! The portal allows one connection per session (MaxConnections=1), so session state
//! lives inside its connection and moves with it on connection reinstatement.

use std::cmp::min;
use std::collections::VecDeque;

use crate::fxhash::FxHashMap;
use std::time::Duration;

use super::digest::{self, DIGEST_LEN};
use super::params::{Digest, SessionParams};
use super::san::{Handle, NexusId};
use super::wire::{BHS_LEN, Bhs, Isid, Lun, Residual, TaskAttr, TmfFunction, pad4};

/// A slab of values addressed by generation-checked handles.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn insert(&mut self, v: T) -> Handle {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i as usize];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = Some(v);
            Handle {
                index: i,
                generation: slot.0,
            }
        } else {
            self.slots.push((0, Some(v)));
            Handle {
                index: (self.slots.len() - 1) as u32,
                generation: 0,
            }
        }
    }

    pub(crate) fn get(&self, h: Handle) -> Option<&T> {
        match self.slots.get(h.index as usize) {
            Some((g, Some(v))) if *g == h.generation => Some(v),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, h: Handle) -> Option<&mut T> {
        match self.slots.get_mut(h.index as usize) {
            Some((g, Some(v))) if *g == h.generation => Some(v),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, h: Handle) -> Option<T> {
        match self.slots.get_mut(h.index as usize) {
            Some((g, v @ Some(_))) if *g == h.generation => {
                self.free.push(h.index);
                self.len -= 1;
                v.take()
            }
            _ => None,
        }
    }

    /// Takes the value out, keeping the slot reserved; `put_back` restores it.
    pub(crate) fn take(&mut self, h: Handle) -> Option<T> {
        match self.slots.get_mut(h.index as usize) {
            Some((g, v @ Some(_))) if *g == h.generation => v.take(),
            _ => None,
        }
    }

    pub(crate) fn put_back(&mut self, h: Handle, v: T) {
        if let Some(slot) = self.slots.get_mut(h.index as usize)
            && slot.0 == h.generation
            && slot.1.is_none()
        {
            slot.1 = Some(v);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots, used or free: [`Slab::handle_at`] takes `0..slot_count()`.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The handle of slot `i` if it holds a value.
    pub(crate) fn handle_at(&self, i: usize) -> Option<Handle> {
        let (g, v) = self.slots.get(i)?;
        v.as_ref().map(|_| Handle {
            index: i as u32,
            generation: *g,
        })
    }

    pub(crate) fn handles(&self) -> Vec<Handle> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, (_, v))| v.is_some())
            .map(|(i, (g, _))| Handle {
                index: i as u32,
                generation: *g,
            })
            .collect()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Handle, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, (g, v))| {
            v.as_ref().map(|v| {
                (
                    Handle {
                        index: i as u32,
                        generation: *g,
                    },
                    v,
                )
            })
        })
    }
}

/// Digests in force on a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Digests {
    pub(crate) header: bool,
    pub(crate) data: bool,
}

impl Digests {
    pub(crate) fn from_params(p: &SessionParams) -> Self {
        Digests {
            header: p.header_digest == Digest::Crc32c,
            data: p.data_digest == Digest::Crc32c,
        }
    }
}

/// The output byte stream of a connection. Positions are stream offsets, so a PDU header
/// already queued can be found and patched until its first byte has been handed to the
/// socket (phase collapse of the final Data-In with status, RFC 7143 §11.7.3).
#[derive(Debug, Default)]
pub(crate) struct TxBuf {
    buf: Vec<u8>,
    base: u64,
    sent: usize,
}

impl TxBuf {
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sent >= self.buf.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Stream position where the next PDU will start.
    pub(crate) fn end_pos(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.buf.len());
        if self.sent == self.buf.len() {
            self.base += self.buf.len() as u64;
            self.buf.clear();
            self.sent = 0;
        } else if self.sent > (1 << 20) && self.sent * 2 > self.buf.len() {
            self.buf.drain(..self.sent);
            self.base += self.sent as u64;
            self.sent = 0;
        }
    }

    /// Appends a PDU: header, optional header digest, data parts, padding, optional data
    /// digest. Returns the stream position of the header.
    pub(crate) fn push_pdu(&mut self, hdr: &[u8; BHS_LEN], data: &[&[u8]], dg: Digests) -> u64 {
        let dlen = data.iter().map(|d| d.len()).sum();
        self.push_parts(hdr, data.iter().copied(), dlen, dg)
    }

    /// [`TxBuf::push_pdu`] with bytes `[skip, skip + len)` of the parts joined as the
    /// data (fewer if the parts end sooner).
    pub(crate) fn push_pdu_range(
        &mut self,
        hdr: &[u8; BHS_LEN],
        parts: &[&[u8]],
        skip: usize,
        len: usize,
        dg: Digests,
    ) -> u64 {
        let total: usize = parts.iter().map(|d| d.len()).sum();
        if skip == 0 && len >= total {
            // All of the parts (a Data-In that fits one PDU).
            let data = parts.iter().copied().filter(|d| !d.is_empty());
            return self.push_parts(hdr, data, total, dg);
        }
        // The parts' pieces that make the data: the first from `skip` on, at most
        // `len` bytes in all.
        let dlen = min(len, total.saturating_sub(skip));
        let (mut skip, mut want) = (skip, len);
        let data = parts.iter().filter_map(move |p| {
            let d = p.get(skip..).unwrap_or(&[]);
            skip -= p.len() - d.len();
            let d = &d[..min(want, d.len())];
            want -= d.len();
            (!d.is_empty()).then_some(d)
        });
        self.push_parts(hdr, data, dlen, dg)
    }

    /// Appends a PDU whose data, `dlen` bytes, is `data` joined.
    fn push_parts<'a>(
        &mut self,
        hdr: &[u8; BHS_LEN],
        data: impl Iterator<Item = &'a [u8]>,
        dlen: usize,
        dg: Digests,
    ) -> u64 {
        let pos = self.base + self.buf.len() as u64;
        let mut h = *hdr;
        Bhs::new_unchecked(&mut h[..]).set_data_segment_len(dlen as u32);
        self.buf.reserve(BHS_LEN + 2 * DIGEST_LEN + dlen + 3);
        self.buf.extend_from_slice(&h);
        if dg.header {
            self.buf.extend_from_slice(&digest::header_digest(&h));
        }
        if dlen > 0 {
            let mut crc = 0u32;
            let mut first = true;
            for d in data {
                self.buf.extend_from_slice(d);
                if dg.data {
                    crc = if first {
                        digest::crc32c(d)
                    } else {
                        digest::crc32c_append(crc, d)
                    };
                    first = false;
                }
            }
            let pad = pad4(dlen);
            self.buf.extend_from_slice(&[0u8; 3][..pad]);
            if dg.data {
                crc = digest::crc32c_append(crc, &[0u8; 3][..pad]);
                self.buf.extend_from_slice(&crc.to_le_bytes());
            }
        }
        pos
    }

    /// The header at stream position `pos`, if no byte of it has been sent yet.
    pub(crate) fn patchable(&mut self, pos: u64) -> Option<&mut [u8]> {
        let start = self.base + self.sent as u64;
        if pos < start {
            return None;
        }
        let i = usize::try_from(pos - self.base).ok()?;
        self.buf.get_mut(i..i + BHS_LEN)
    }

    /// Recomputes the header digest of the header at `pos` (after a patch).
    pub(crate) fn refresh_header_digest(&mut self, pos: u64) {
        let Ok(i) = usize::try_from(pos - self.base) else {
            return;
        };
        if let Some(h) = self.buf.get(i..i + BHS_LEN) {
            let d = digest::header_digest(h);
            if let Some(slot) = self.buf.get_mut(i + BHS_LEN..i + BHS_LEN + DIGEST_LEN) {
                slot.copy_from_slice(&d);
            }
        }
    }
}

/// One PDU cut from the receive stream.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) bhs: &'a [u8],
    pub(crate) ahs: &'a [u8],
    pub(crate) data: &'a [u8],
    pub(crate) len: usize,
}

/// Why a PDU could not be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The header digest does not match: nothing in the header can be trusted.
    HeaderDigest,
    /// The data digest does not match (the header is fine).
    DataDigest,
    /// DataSegmentLength exceeds what we declared.
    TooLong,
}

/// Cuts the next PDU from `input`: `Ok(None)` if more bytes are needed.
pub(crate) fn frame(
    input: &[u8],
    dg: Digests,
    max_data: u32,
) -> Result<Option<Frame<'_>>, (FrameError, usize)> {
    if input.len() < BHS_LEN {
        return Ok(None);
    }
    let bhs = Bhs::new_unchecked(&input[..BHS_LEN]);
    let ahs_len = bhs.total_ahs_len();
    let hd = if dg.header { DIGEST_LEN } else { 0 };
    let header_end = BHS_LEN + ahs_len;
    if input.len() < header_end + hd {
        return Ok(None);
    }
    if dg.header {
        let want = digest::header_digest(&input[..header_end]);
        if input[header_end..header_end + hd] != want {
            return Err((FrameError::HeaderDigest, 0));
        }
    }
    let dsl = bhs.data_segment_len();
    if dsl > max_data {
        return Err((FrameError::TooLong, 0));
    }
    let dsl = dsl as usize;
    let dd = if dg.data && dsl > 0 { DIGEST_LEN } else { 0 };
    let data_start = header_end + hd;
    let total = data_start + dsl + pad4(dsl) + dd;
    if input.len() < total {
        return Ok(None);
    }
    let data = &input[data_start..data_start + dsl];
    if dd > 0 {
        let want = digest::data_digest(data);
        if input[total - DIGEST_LEN..total] != want {
            return Err((FrameError::DataDigest, total));
        }
    }
    Ok(Some(Frame {
        bhs: &input[..BHS_LEN],
        ahs: &input[BHS_LEN..header_end],
        data,
        len: total,
    }))
}

/// A contiguous range the SAN asked for with `ready_to_transfer`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    pub(crate) offset: u32,
    /// Length after clipping to the EDTL.
    pub(crate) len: u32,
    pub(crate) delivered: u32,
    /// Next offset of this grant not yet covered by an R2T.
    pub(crate) r2t_next: u32,
}

impl Grant {
    pub(crate) fn end(&self) -> u32 {
        self.offset + self.len
    }
}

/// An R2T sent and not yet fully answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct R2tState {
    pub(crate) ttt: u32,
    pub(crate) offset: u32,
    pub(crate) len: u32,
    pub(crate) received: u32,
    pub(crate) next_datasn: u32,
}

/// A final status held back until the initiator's data phase ends.
#[derive(Debug, Clone)]
pub(crate) struct ParkedStatus {
    pub(crate) status: u8,
    pub(crate) sense: Vec<u8>,
    pub(crate) residual: Residual,
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskState {
    /// Received ahead of CmdSN order; not yet given to the SAN.
    Waiting,
    /// Given to the SAN.
    Active,
}

/// One SCSI command on a connection.
#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) itt: u32,
    pub(crate) lun: Lun,
    pub(crate) cmdsn: u32,
    pub(crate) edtl: u32,
    pub(crate) read: bool,
    pub(crate) write: bool,
    pub(crate) attr: TaskAttr,
    /// The CDB's first 16 bytes (from the BHS).
    pub(crate) cdb: [u8; 16],
    /// The whole CDB when an extended-CDB AHS made it longer than 16 bytes, else empty
    /// (so the usual command allocates nothing for it).
    pub(crate) cdb_long: Vec<u8>,
    pub(crate) state: TaskState,
    // Data-Out.
    pub(crate) unsol_open: bool,
    pub(crate) unsol_buf: Vec<u8>,
    pub(crate) unsol_next_datasn: u32,
    pub(crate) unsol_limit: u32,
    pub(crate) grants: VecDeque<Grant>,
    pub(crate) r2ts: Vec<R2tState>,
    pub(crate) r2t_queue: VecDeque<(u32, u32)>,
    /// DataSN/R2TSN: Data-In and R2T PDUs share one number space (RFC 7143 §11.8.3).
    pub(crate) in_sn: u32,
    // Data-In.
    pub(crate) in_next_offset: u32,
    pub(crate) in_seq_bytes: u32,
    pub(crate) last_datain: Option<u64>,
    pub(crate) parked: Option<ParkedStatus>,
    /// End of the furthest range the SAN has asked for.
    pub(crate) granted_end: u32,
}

impl Task {
    /// The whole CDB.
    pub(crate) fn cdb(&self) -> &[u8] {
        if self.cdb_long.is_empty() {
            &self.cdb
        } else {
            &self.cdb_long
        }
    }
}

/// A TMF waiting for the SAN.
#[derive(Debug)]
pub(crate) struct PendingTmf {
    pub(crate) itt: u32,
    pub(crate) function: TmfFunction,
    /// Tasks of this connection the function covers, as they were when it arrived.
    pub(crate) affected: Vec<Handle>,
}

/// A PDU received ahead of its CmdSN and kept for in-order processing.
#[derive(Debug)]
pub(crate) enum Queued {
    /// A SCSI command, already a task in [`TaskState::Waiting`].
    Task(Handle),
    /// Another CmdSN-ordered PDU, copied (header, AHS and data).
    Pdu(Vec<u8>),
    /// A command that was aborted before its turn: only its CmdSN remains.
    Tombstone,
}

/// The kind of a session and what identifies it to the SAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionKind {
    /// Discovery: SendTargets only.
    Discovery,
    /// Normal, with its nexus and target index.
    Normal { nexus: NexusId, target: usize },
}

/// Session state (one connection per session).
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) kind: SessionKind,
    pub(crate) tsih: u16,
    pub(crate) isid: Isid,
    pub(crate) cid: u16,
    pub(crate) initiator_name: String,
    pub(crate) params: SessionParams,
    pub(crate) exp_cmdsn: u32,
    pub(crate) max_cmdsn: u32,
    pub(crate) queued: FxHashMap<u32, Queued>,
}

impl Session {
    pub(crate) fn nexus(&self) -> Option<NexusId> {
        match self.kind {
            SessionKind::Normal { nexus, .. } => Some(nexus),
            SessionKind::Discovery => None,
        }
    }
}

/// A multi-PDU Text Response being sent in pieces (RFC 7143 §11.11, C bit).
#[derive(Debug)]
pub(crate) struct TextContinuation {
    pub(crate) itt: u32,
    pub(crate) ttt: u32,
    pub(crate) rest: Vec<u8>,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Login phase.
    Login,
    /// Full feature phase.
    FullFeature,
    /// Flushing the last PDUs (login reject, logout response) before closing.
    Closing,
    /// Done: the network layer should close the socket.
    Dead,
}

/// A target-initiated NOP-In ping in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ping {
    pub(crate) ttt: u32,
    pub(crate) sent: Duration,
}

/// A connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) phase: Phase,
    pub(crate) rx_digests: Digests,
    pub(crate) tx_digests: Digests,
    pub(crate) tx: TxBuf,
    pub(crate) statsn: u32,
    pub(crate) accepted_at: Duration,
    pub(crate) last_rx: Duration,
    pub(crate) local_addr: Option<std::net::SocketAddr>,
    pub(crate) login: Option<Box<super::login::LoginState>>,
    pub(crate) session: Option<Session>,
    pub(crate) tasks: Slab<Task>,
    pub(crate) itt_map: FxHashMap<u32, Handle>,
    pub(crate) tmfs: Slab<PendingTmf>,
    pub(crate) text_cont: Option<TextContinuation>,
    pub(crate) text_in: Vec<u8>,
    pub(crate) ping: Option<Ping>,
    pub(crate) next_ttt: u32,
    /// Stream position of the last PDU that took a StatSN: a status may ride on an
    /// earlier Data-In only if no such PDU follows it, keeping StatSNs in stream order.
    pub(crate) statsn_pos: u64,
    /// Bytes of PDUs received (statistics).
    pub(crate) rx_pdus: u64,
}

impl Conn {
    pub(crate) fn new(
        now: Duration,
        statsn: u32,
        local_addr: Option<std::net::SocketAddr>,
    ) -> Self {
        Conn {
            phase: Phase::Login,
            rx_digests: Digests::default(),
            tx_digests: Digests::default(),
            tx: TxBuf::default(),
            statsn,
            accepted_at: now,
            last_rx: now,
            local_addr,
            login: None,
            session: None,
            tasks: Slab::default(),
            itt_map: FxHashMap::default(),
            tmfs: Slab::default(),
            text_cont: None,
            text_in: Vec::new(),
            ping: None,
            next_ttt: 1,
            statsn_pos: 0,
            rx_pdus: 0,
        }
    }

    /// Allocates a Target Transfer Tag (never the reserved value).
    pub(crate) fn alloc_ttt(&mut self) -> u32 {
        let t = self.next_ttt;
        self.next_ttt = self.next_ttt.wrapping_add(1);
        if self.next_ttt == super::wire::RESERVED_TAG {
            self.next_ttt = 1;
        }
        t
    }

    /// The next StatSN, advancing it.
    pub(crate) fn take_statsn(&mut self) -> u32 {
        self.statsn_pos = self.tx.end_pos();
        let s = self.statsn;
        self.statsn = self.statsn.wrapping_add(1);
        s
    }

    /// Queues a PDU with the connection's transmit digests.
    pub(crate) fn send(&mut self, hdr: &[u8; BHS_LEN], data: &[&[u8]]) -> u64 {
        let dg = self.tx_digests;
        self.tx.push_pdu(hdr, data, dg)
    }

    /// (ExpCmdSN, MaxCmdSN) to put in outgoing PDUs.
    pub(crate) fn window(&self) -> (u32, u32) {
        match &self.session {
            Some(s) => (s.exp_cmdsn, s.max_cmdsn),
            None => (0, 0),
        }
    }

    pub(crate) fn remove_task(&mut self, h: Handle) -> Option<Task> {
        let t = self.tasks.remove(h)?;
        if self.itt_map.get(&t.itt) == Some(&h) {
            self.itt_map.remove(&t.itt);
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_generations_catch_stale_handles() {
        let mut s: Slab<u32> = Slab::default();
        let a = s.insert(1);
        assert_eq!(s.get(a), Some(&1));
        assert_eq!(s.remove(a), Some(1));
        let b = s.insert(2);
        assert_eq!(a.index, b.index);
        assert_ne!(a.generation, b.generation);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(b), Some(&2));
        assert_eq!(s.take(b), Some(2));
        assert_eq!(s.get(b), None);
        s.put_back(b, 3);
        assert_eq!(s.get(b), Some(&3));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_pdu_from_a_range_of_parts_is_that_of_the_bytes_joined() {
        let dg = Digests {
            header: true,
            data: true,
        };
        let mut hdr = [0u8; BHS_LEN];
        hdr[0] = 0x25;
        let joined: std::vec::Vec<u8> = (0..100u8).collect();
        let parts: [&[u8]; 5] = [
            &joined[..0],
            &joined[..30],
            &joined[30..30],
            &joined[30..97],
            &joined[97..],
        ];
        for (skip, len) in [
            (0, 100),
            (0, 500),
            (0, 31),
            (5, 90),
            (30, 0),
            (29, 2),
            (97, 3),
            (99, 9),
        ] {
            let mut a = TxBuf::default();
            a.push_pdu_range(&hdr, &parts, skip, len, dg);
            let mut b = TxBuf::default();
            b.push_pdu(&hdr, &[&joined[skip..(skip + len).min(100)]], dg);
            assert_eq!(a.buf, b.buf, "skip {skip} len {len}");
        }
    }

    #[test]
    fn framing_with_and_without_digests() {
        let mut tx = TxBuf::default();
        let mut hdr = [0u8; BHS_LEN];
        hdr[0] = 0x05;
        let dg = Digests {
            header: true,
            data: true,
        };
        let pos = tx.push_pdu(&hdr, &[b"abc", b"de"], dg);
        assert_eq!(pos, 0);
        let bytes = tx.pending().to_vec();
        assert_eq!(bytes.len(), 48 + 4 + 5 + 3 + 4);
        let f = frame(&bytes, dg, 8192).unwrap().unwrap();
        assert_eq!(f.data, b"abcde");
        assert_eq!(f.len, bytes.len());
        // Incomplete input asks for more.
        assert!(
            frame(&bytes[..bytes.len() - 1], dg, 8192)
                .unwrap()
                .is_none()
        );
        // A flipped data byte is a data digest error, a flipped header byte a header one.
        let mut bad = bytes.clone();
        bad[53] ^= 1;
        assert_eq!(frame(&bad, dg, 8192).unwrap_err().0, FrameError::DataDigest);
        let mut bad = bytes.clone();
        bad[16] ^= 1;
        assert_eq!(
            frame(&bad, dg, 8192).unwrap_err().0,
            FrameError::HeaderDigest
        );
        assert_eq!(frame(&bytes, dg, 4).unwrap_err().0, FrameError::TooLong);
    }

    #[test]
    fn tx_patching_only_before_send() {
        let mut tx = TxBuf::default();
        let hdr = [0u8; BHS_LEN];
        let p1 = tx.push_pdu(&hdr, &[], Digests::default());
        let p2 = tx.push_pdu(&hdr, &[], Digests::default());
        assert!(tx.patchable(p1).is_some());
        tx.advance(1);
        assert!(tx.patchable(p1).is_none());
        assert!(tx.patchable(p2).is_some());
        tx.advance(95);
        assert!(tx.is_empty());
        let p3 = tx.push_pdu(&hdr, &[], Digests::default());
        assert_eq!(p3, 96);
        assert!(tx.patchable(p3).is_some());
    }
}
