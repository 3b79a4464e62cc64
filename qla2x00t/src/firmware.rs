//! Firmware images: the two-segment RISC code format and where it comes from.
//!
//! Reference §3.5 step 5: an image is big-endian dwords in (at least) two
//! segments; dword 2 of a segment is its RISC load address and dword 3 its
//! length in dwords, the four header dwords included (they are loaded too).
//! The driver converts each dword to little-endian in the DMA buffer and
//! issues LOAD_RISC_RAM_EXTENDED per chunk, then VERIFY_CHECKSUM on the first
//! segment's address, which is where the firmware's own checksum rule is
//! applied. The image is validated structurally here before anything is
//! loaded, so a truncated or corrupt file is an error value, not a bus fault.

use core::fmt;

/// Segments in an FWI2 RISC image.
pub const SEGMENTS: usize = 2;

/// Where the firmware comes from.
#[derive(Debug, Clone, Copy)]
pub enum FirmwareSource<'a> {
    /// An image in host memory (a file the tool read, a blob linked into the
    /// on-card image).
    Image(&'a [u8]),
    /// The image in the adapter's flash, read through `flash_addr`/`flash_data`
    /// at this dword offset within the flash data region.
    Flash {
        /// Dword offset of the image within the flash data region.
        dword_offset: u32,
    },
}

/// Why an image was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageError {
    /// The image ends inside segment `segment`'s header or body.
    Truncated {
        /// Segment index.
        segment: usize,
    },
    /// Segment `segment` announces 0, 0xFFFFFFFF or fewer than 4 dwords.
    BadLength {
        /// Segment index.
        segment: usize,
        /// The announced length in dwords.
        dwords: u32,
    },
    /// The image length is not a multiple of 4.
    Misaligned,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Truncated { segment } => {
                write!(f, "firmware image truncated in segment {segment}")
            }
            ImageError::BadLength { segment, dwords } => {
                write!(
                    f,
                    "firmware segment {segment} has bad length {dwords:#x} dwords"
                )
            }
            ImageError::Misaligned => f.write_str("firmware image length not a multiple of 4"),
        }
    }
}

impl core::error::Error for ImageError {}

/// One segment: where it is in the image and where it goes in RISC memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Dword offset of the segment's first dword within the image.
    pub image_dword: u32,
    /// RISC load address (segment dword 2).
    pub risc_addr: u32,
    /// Length in dwords (segment dword 3), header included.
    pub dwords: u32,
}

/// Check the header dwords of one segment (`hdr` = its first 4 dwords).
pub fn segment_from_header(
    segment: usize,
    image_dword: u32,
    hdr: [u32; 4],
) -> Result<Segment, ImageError> {
    let dwords = hdr[3];
    if dwords < 4 || dwords == u32::MAX {
        return Err(ImageError::BadLength { segment, dwords });
    }
    Ok(Segment {
        image_dword,
        risc_addr: hdr[2],
        dwords,
    })
}

/// A validated in-memory image.
#[derive(Debug, Clone, Copy)]
pub struct FirmwareImage<'a> {
    bytes: &'a [u8],
    segments: [Segment; SEGMENTS],
}

impl<'a> FirmwareImage<'a> {
    /// Validate `bytes` (trailing data after the segments, such as dump
    /// templates, is allowed and not loaded).
    pub fn parse(bytes: &'a [u8]) -> Result<FirmwareImage<'a>, ImageError> {
        if !bytes.len().is_multiple_of(4) {
            return Err(ImageError::Misaligned);
        }
        let total = (bytes.len() / 4) as u64;
        let mut segments = [Segment {
            image_dword: 0,
            risc_addr: 0,
            dwords: 0,
        }; SEGMENTS];
        let mut at: u64 = 0;
        for (i, seg) in segments.iter_mut().enumerate() {
            if at + 4 > total {
                return Err(ImageError::Truncated { segment: i });
            }
            let mut hdr = [0u32; 4];
            for (k, h) in hdr.iter_mut().enumerate() {
                *h =
                    be_dword(bytes, at as usize + k).ok_or(ImageError::Truncated { segment: i })?;
            }
            *seg = segment_from_header(i, at as u32, hdr)?;
            at += seg.dwords as u64;
            if at > total {
                return Err(ImageError::Truncated { segment: i });
            }
        }
        Ok(FirmwareImage { bytes, segments })
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment; SEGMENTS] {
        &self.segments
    }

    /// Dword `i` of the image (host order), if it exists.
    pub fn dword(&self, i: u32) -> Option<u32> {
        be_dword(self.bytes, i as usize)
    }

    /// The RISC address execution starts at (the first segment's).
    pub fn start_address(&self) -> u32 {
        self.segments[0].risc_addr
    }

    /// Dwords loaded in total.
    pub fn loaded_dwords(&self) -> u64 {
        self.segments.iter().map(|s| s.dwords as u64).sum()
    }
}

fn be_dword(bytes: &[u8], i: usize) -> Option<u32> {
    let b = bytes.get(i.checked_mul(4)?..i.checked_mul(4)? + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn image(segs: &[(u32, u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        for &(addr, len) in segs {
            let words = [0x11u32, 0x22, addr, len];
            for w in words {
                v.extend_from_slice(&w.to_be_bytes());
            }
            for k in 4..len {
                v.extend_from_slice(&k.to_be_bytes());
            }
        }
        v
    }

    #[test]
    fn parses_two_segments() {
        let b = image(&[(0x10_0000, 8), (0x20_0000, 6)]);
        let img = FirmwareImage::parse(&b).unwrap();
        assert_eq!(
            img.segments()[0],
            Segment {
                image_dword: 0,
                risc_addr: 0x10_0000,
                dwords: 8
            }
        );
        assert_eq!(img.segments()[1].image_dword, 8);
        assert_eq!(img.segments()[1].risc_addr, 0x20_0000);
        assert_eq!(img.start_address(), 0x10_0000);
        assert_eq!(img.loaded_dwords(), 14);
        assert_eq!(img.dword(2), Some(0x10_0000));
        assert_eq!(img.dword(14), None);
        // Trailing data is allowed.
        let mut t = b.clone();
        t.extend_from_slice(&[0; 8]);
        assert!(FirmwareImage::parse(&t).is_ok());
    }

    #[test]
    fn refuses_bad_images() {
        let b = image(&[(0x10_0000, 8), (0x20_0000, 6)]);
        assert_eq!(
            FirmwareImage::parse(&b[..b.len() - 4]).unwrap_err(),
            ImageError::Truncated { segment: 1 }
        );
        assert_eq!(
            FirmwareImage::parse(&b[..33]).unwrap_err(),
            ImageError::Misaligned
        );
        assert_eq!(
            FirmwareImage::parse(&b[..32]).unwrap_err(),
            ImageError::Truncated { segment: 1 }
        );
        assert_eq!(
            FirmwareImage::parse(&[]).unwrap_err(),
            ImageError::Truncated { segment: 0 }
        );
        let z = image(&[(0x10_0000, 3)]);
        assert_eq!(
            FirmwareImage::parse(&z).unwrap_err(),
            ImageError::BadLength {
                segment: 0,
                dwords: 3
            }
        );
        let mut big = image(&[(0x10_0000, 8), (0x20_0000, 6)]);
        big[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            FirmwareImage::parse(&big),
            Err(ImageError::BadLength { segment: 0, .. })
        ));
        let mut huge = image(&[(0x10_0000, 8), (0x20_0000, 6)]);
        huge[12..16].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
        assert!(matches!(
            FirmwareImage::parse(&huge),
            Err(ImageError::Truncated { segment: 0 })
        ));
    }
}
