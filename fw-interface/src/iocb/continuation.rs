//! CONTINUE_A64 (0x0A): five more 64-bit DSDs for the CTIO7 in the preceding slot(s).
//!
//! Source: reference §6.2: DSDs at 0x04, 0x10, 0x1C, 0x28, 0x34; they follow the CTIO7 in the
//! immediately following request-queue slots (wrapping allowed). The CTIO7's `entry_count`
//! counts them ([`ctio7_entry_count`](crate::iocb::ctio7_entry_count)).

use core::fmt;

use crate::WireError;
use crate::iocb::{
    DSDS_PER_CONTINUATION, DSDS_PER_CTIO7, Dsd64, ENTRY_LEN, EntryStatus, EntryType, check_entry,
    start_entry,
};
use crate::value::{FieldVisitor, Value, Visit};

/// Offsets of the five DSDs.
pub const DSD_OFFSETS: [usize; DSDS_PER_CONTINUATION] = [0x04, 0x10, 0x1C, 0x28, 0x34];

/// A view of a CONTINUE_A64.
#[derive(Debug, Clone)]
pub struct ContinueA64<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ContinueA64<T> {
    view_basics!(ContinueA64, ENTRY_LEN);

    accessors! {
        /// 0x01.
        entry_count, set_entry_count, 0x01, u8;
    }

    /// DSD `i` (0–4); `None` for `i > 4`.
    pub fn dsd(&self, i: usize) -> Option<Dsd64> {
        DSD_OFFSETS
            .get(i)
            .map(|&at| Dsd64::read(self.buffer.as_ref(), at))
    }

    /// Sets DSD `i` (ignored for `i > 4`).
    pub fn set_dsd(&mut self, i: usize, d: Dsd64)
    where
        T: AsMut<[u8]>,
    {
        if let Some(&at) = DSD_OFFSETS.get(i) {
            d.write(self.buffer.as_mut(), at)
        }
    }
}

/// A parsed CONTINUE_A64: always five DSD slots (unused ones are zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ContinueA64Repr {
    /// The five DSDs.
    pub dsds: [Dsd64; DSDS_PER_CONTINUATION],
}

impl ContinueA64Repr {
    /// Up to five DSDs (the rest zero); `Err` for more than five.
    pub fn new(dsds: &[Dsd64]) -> Result<ContinueA64Repr, WireError> {
        let mut r = ContinueA64Repr::default();
        r.dsds
            .get_mut(..dsds.len())
            .ok_or(WireError::Malformed("CONTINUE_A64 holds at most 5 DSDs"))?
            .copy_from_slice(dsds);
        Ok(r)
    }

    /// The continuation entries for a command's full DSD list: skips the first DSD (it goes
    /// in the CTIO7) and yields one entry per 5 of the rest.
    pub fn for_dsds(all: &[Dsd64]) -> impl Iterator<Item = ContinueA64Repr> + '_ {
        all.get(DSDS_PER_CTIO7..)
            .unwrap_or(&[])
            .chunks(DSDS_PER_CONTINUATION)
            .filter_map(|c| ContinueA64Repr::new(c).ok())
    }

    /// The DSDs with a non-zero length.
    pub fn used(&self) -> impl Iterator<Item = &Dsd64> {
        self.dsds.iter().filter(|d| d.length != 0)
    }

    /// Parses an entry.
    pub fn parse<T: AsRef<[u8]>>(c: &ContinueA64<T>) -> Result<ContinueA64Repr, WireError> {
        check_entry(c.buffer.as_ref(), EntryType::ContinueA64)?;
        let mut r = ContinueA64Repr::default();
        for (i, d) in r.dsds.iter_mut().enumerate() {
            *d = Dsd64::read(c.buffer.as_ref(), DSD_OFFSETS[i]);
        }
        Ok(r)
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<ContinueA64Repr, WireError> {
        ContinueA64Repr::parse(&ContinueA64::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes (entry_count 1).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        c: &mut ContinueA64<T>,
    ) -> Result<(), WireError> {
        start_entry(
            c.buffer.as_mut(),
            EntryType::ContinueA64,
            1,
            EntryStatus::empty(),
        )?;
        for (i, d) in self.dsds.iter().enumerate() {
            c.set_dsd(i, *d);
        }
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut ContinueA64::new_unchecked(b))
    }
}

impl fmt::Display for ContinueA64Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CONTINUE_A64")?;
        for d in self.used() {
            write!(f, " {d}")?;
        }
        Ok(())
    }
}

impl Visit for ContinueA64Repr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        const A: [&str; 5] = [
            "dsd0_address",
            "dsd1_address",
            "dsd2_address",
            "dsd3_address",
            "dsd4_address",
        ];
        const L: [&str; 5] = [
            "dsd0_length",
            "dsd1_length",
            "dsd2_length",
            "dsd3_length",
            "dsd4_length",
        ];
        v.field("entry_type", EntryType::ContinueA64.to_value());
        for (i, d) in self.dsds.iter().enumerate() {
            v.field(A[i], Value::U64(d.address));
            v.field(L[i], Value::U32(d.length));
        }
    }
}

view_display!(ContinueA64, ContinueA64Repr::parse, "CONTINUE_A64");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn golden_continuation() {
        let mut b = [0u8; 64];
        b[0] = 0x0A; // CONTINUE_A64
        b[1] = 0x01;
        b[0x04..0x10].copy_from_slice(&[0x00, 0x10, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0, 0]); // 0x1000/4096
        b[0x10..0x1C].copy_from_slice(&[0x00, 0x20, 0, 0, 1, 0, 0, 0, 0x00, 0x02, 0, 0]); // 0x1_0000_2000/512
        let r = ContinueA64Repr::parse_bytes(&b).unwrap();
        let want = ContinueA64Repr::new(&[
            Dsd64 {
                address: 0x1000,
                length: 4096,
            },
            Dsd64 {
                address: 0x1_0000_2000,
                length: 512,
            },
        ])
        .unwrap();
        assert_eq!(r, want);
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(r.to_string(), "CONTINUE_A64 0x1000/4096 0x100002000/512");
        let v = ContinueA64::new_checked(&b[..]).unwrap();
        assert_eq!(
            (v.dsd(1), v.dsd(5), v.entry_count()),
            (Some(want.dsds[1]), None, 1)
        );
        assert!(ContinueA64Repr::new(&[Dsd64::default(); 6]).is_err());
        let c = Collect::of(&r);
        c.assert_unique();
        assert_eq!(c.get("dsd1_length"), "512");
        assert_eq!(r.buffer_len(), 64);
    }

    #[test]
    fn splits_a_dsd_list() {
        let all: Vec<Dsd64> = (0..12u64)
            .map(|i| Dsd64 {
                address: i * 0x1000,
                length: 4096,
            })
            .collect();
        let conts: Vec<_> = ContinueA64Repr::for_dsds(&all).collect();
        assert_eq!(conts.len(), 3); // 11 DSDs after the first: 5 + 5 + 1
        assert_eq!(conts[0].dsds[0].address, 0x1000);
        assert_eq!(conts[2].used().count(), 1);
        assert_eq!(1 + conts.len(), crate::iocb::ctio7_entry_count(all.len()));
        assert_eq!(ContinueA64Repr::for_dsds(&all[..1]).count(), 0);
        assert_eq!(ContinueA64Repr::for_dsds(&[]).count(), 0);
    }
}
