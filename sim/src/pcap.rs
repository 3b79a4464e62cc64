//! pcap export of FC frames as LINKTYPE_FC_2_WITH_FRAME_DELIMS (225).
//!
//! Record layout (reference §8.7): SOF (4 bytes, the ordered set read big-endian, K28.5 as
//! 0xBC), the 24-byte FC header, the payload (padded to 4 bytes), the CRC-32 of header +
//! payload stored least significant byte first (as tshark 4.0 checks it), and EOF (4).
//! Timestamps are the simulator's clock (virtual time in stepped mode), so a stepped run
//! writes the same file byte for byte for the same seed.
//!
//! ```no_run
//! # use rscst_sim::pcap::PcapWriter;
//! let file = std::fs::File::create("trace.pcap").unwrap();
//! let mut pcap = PcapWriter::new(std::io::BufWriter::new(file)).unwrap();
//! // sim.set_pcap(pcap) streams every frame the fabric carries into it.
//! # let _ = &mut pcap;
//! ```

use std::io::{self, Write};

use rscst_fw::fc::frame::{DELIMITER_OVERHEAD, DelimitedFrame};
use rscst_fw::fc::{Eof, Sof};

use crate::time::SimTime;

/// LINKTYPE_FC_2 (224): header + payload, no delimiters, no CRC.
pub const LINKTYPE_FC_2: u32 = 224;
/// LINKTYPE_FC_2_WITH_FRAME_DELIMS (225): SOF + header + payload + CRC + EOF.
pub const LINKTYPE_FC_2_WITH_FRAME_DELIMS: u32 = 225;
/// Snap length written in the file header (a whole FC frame always fits).
pub const SNAPLEN: u32 = 65535;

/// A streaming writer of a classic (microsecond) pcap file with link type 225.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    frames: u64,
    scratch: Vec<u8>,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte file header.
    pub fn new(mut out: W) -> io::Result<PcapWriter<W>> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone 0, sigfigs 0
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_FC_2_WITH_FRAME_DELIMS.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            frames: 0,
            scratch: Vec::with_capacity(2200),
        })
    }

    /// Writes one frame (`frame` = header + payload) with its delimiters and the CRC as it
    /// was on the wire (`crc`; pass the computed one for an intact frame).
    pub fn write_frame(
        &mut self,
        time: SimTime,
        sof: Sof,
        frame: &[u8],
        crc: u32,
        eof: Eof,
    ) -> io::Result<()> {
        let n = frame.len() + DELIMITER_OVERHEAD;
        self.scratch.clear();
        self.scratch.resize(n, 0);
        DelimitedFrame::emit(sof, frame, eof, &mut self.scratch)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        // emit() wrote the correct CRC; put the wire CRC (possibly corrupted) in its place.
        self.scratch[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
        let us = time.as_nanos() / 1_000;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(n as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(n as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&self.scratch)?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes the frames of recorded trace events (e.g. [`crate::Sim::trace_events`]) to `out`
/// as a pcap; returns how many frames were written.
pub fn write_trace_frames<W: Write>(
    events: &[crate::trace::TraceEvent],
    out: W,
) -> io::Result<u64> {
    let mut w = PcapWriter::new(out)?;
    for e in events {
        if let crate::trace::TraceKind::Frame(f) = &e.kind {
            w.write_frame(e.time, f.sof, &f.bytes, f.crc, f.eof)?;
        }
    }
    w.flush()?;
    Ok(w.frames())
}

/// One record read back from a pcap file (for tests and tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRecord {
    /// Timestamp in microseconds.
    pub micros: u64,
    /// The record bytes (SOF .. EOF for link type 225).
    pub data: Vec<u8>,
}

/// Parses a classic little-endian pcap file: returns the link type and the records.
pub fn read_pcap(bytes: &[u8]) -> io::Result<(u32, Vec<PcapRecord>)> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let hdr = bytes.get(..24).ok_or_else(|| bad("short pcap header"))?;
    if hdr[0..4] != 0xA1B2_C3D4u32.to_le_bytes() {
        return Err(bad("not a little-endian microsecond pcap"));
    }
    let linktype = u32::from_le_bytes([hdr[20], hdr[21], hdr[22], hdr[23]]);
    let mut at = 24;
    let mut out = Vec::new();
    while at < bytes.len() {
        let r = bytes
            .get(at..at + 16)
            .ok_or_else(|| bad("short record header"))?;
        let w = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]) as u64;
        let caplen = w(8) as usize;
        let data = bytes
            .get(at + 16..at + 16 + caplen)
            .ok_or_else(|| bad("short record"))?;
        out.push(PcapRecord {
            micros: w(0) * 1_000_000 + w(4),
            data: data.to_vec(),
        });
        at += 16 + caplen;
    }
    Ok((linktype, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_crc_vector_lands_lsb_first() {
        // Reference §8.7 test vector.
        let mut frame = vec![
            0x07, 0x01, 0x02, 0x03, 0x00, 0x0a, 0x0b, 0x0c, 0x08, 0x99, 0x00, 0x00, 0x01, 0x00,
            0x00, 0x00, 0x12, 0x34, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00,
        ];
        frame.extend_from_slice(&[0u8; 24]);
        let crc = rscst_fw::fc::crc32(&frame);
        assert_eq!(crc, 0x3448_78E7);
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(
            SimTime::from_micros(1_000_001),
            Sof::I3,
            &frame,
            crc,
            Eof::TNeg,
        )
        .unwrap();
        let bytes = w.into_inner().unwrap();
        let (lt, recs) = read_pcap(&bytes).unwrap();
        assert_eq!(lt, 225);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].micros, 1_000_001);
        let d = &recs[0].data;
        assert_eq!(&d[..4], &[0xBC, 0xB5, 0x56, 0x56]);
        assert_eq!(&d[d.len() - 8..d.len() - 4], &[0xe7, 0x78, 0x48, 0x34]);
        assert_eq!(&d[d.len() - 4..], &[0xBC, 0x95, 0x75, 0x75]);
        let parsed = DelimitedFrame::parse(d).unwrap();
        assert!(parsed.crc_ok());
        // The same frame through a recorded trace.
        let ev = crate::trace::TraceEvent {
            time: SimTime::from_micros(5),
            kind: crate::trace::TraceKind::Frame(crate::trace::TracedFrame {
                from: rscst_fw::PortId::new(1),
                to: rscst_fw::PortId::new(2),
                sof: Sof::I3,
                eof: Eof::TNeg,
                bytes: frame.clone(),
                crc,
            }),
        };
        let mut out = Vec::new();
        assert_eq!(write_trace_frames(&[ev], &mut out).unwrap(), 1);
        let (_, recs2) = read_pcap(&out).unwrap();
        assert_eq!(recs2[0].data, recs[0].data);
    }
}
