//! The firmware image format the simulated boot ROM accepts, and a generator of images.
//!
//! Format (reference §3.5 step 5): a sequence of **segments** of big-endian 32-bit words.
//! In each segment, word 2 is the RISC load address (in words) and word 3 the segment length
//! in words; the header words are part of the loaded data. The driver byte-swaps every word
//! to little-endian in its DMA buffer and loads each segment with LOAD_RISC_RAM_EXTENDED
//! (0x0B), in chunks.
//!
//! The model's additions (documented choices, not from the reference):
//!
//! * **Checksum rule**: the 32-bit wrapping sum of all words of a segment is 0. VERIFY_CHECKSUM
//!   (0x07) and EXECUTE_FIRMWARE (0x02) check the segment that starts at the given address;
//!   the generator sets each segment's last word so the rule holds.
//! * Words 4–7 of the first segment carry the firmware version that GET_FIRMWARE_VERSION
//!   returns: major, minor, subminor, attributes (low 16 bits of each word).
//! * Word 0 is the magic `"ISPF"` (0x49535046) in the images this module generates; the ROM
//!   does not check it.

use rscst_fw::pci::RISC_START_ADDRESS;

/// Magic word 0 of generated images.
pub const IMAGE_MAGIC: u32 = 0x4953_5046;
/// Words of the segment header (magic, index, load address, length).
pub const SEGMENT_HEADER_WORDS: usize = 4;

/// What [`FirmwareImage::generate`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSpec {
    /// Version reported by GET_FIRMWARE_VERSION (major, minor, subminor).
    pub version: (u16, u16, u16),
    /// Attributes reported in mb6 (B2 NPIV, B6 multiqueue).
    pub attributes: u16,
    /// Words of the first (code) segment, header included (≥ 9).
    pub code_words: usize,
    /// Load address of the second (data) segment.
    pub data_addr: u32,
    /// Words of the second segment, header included (≥ 5).
    pub data_words: usize,
    /// Seed of the filler words.
    pub seed: u64,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            version: (9, 10, 0),
            attributes: 0,
            code_words: 4096,
            data_addr: 0x0020_0000,
            data_words: 1024,
            seed: 0x5eed,
        }
    }
}

/// One segment of an image, as big-endian bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// RISC load address (word 2).
    pub load_addr: u32,
    /// The segment's bytes (4 × length words, big-endian words, header included).
    pub bytes: &'a [u8],
}

impl Segment<'_> {
    /// Length in words.
    pub fn words(&self) -> usize {
        self.bytes.len() / 4
    }
}

/// A firmware image: big-endian words, segments back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareImage {
    bytes: Vec<u8>,
}

/// Why bytes are not a valid image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// Length not a multiple of 4, or a segment runs past the end.
    Truncated,
    /// A segment's length word is smaller than its header.
    BadLength,
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ImageError::Truncated => "firmware image truncated",
            ImageError::BadLength => "firmware segment length smaller than its header",
        })
    }
}

impl std::error::Error for ImageError {}

/// The 32-bit wrapping sum of words (the checksum rule: 0 for a valid segment).
pub fn checksum(words: impl IntoIterator<Item = u32>) -> u32 {
    words.into_iter().fold(0u32, |s, w| s.wrapping_add(w))
}

impl FirmwareImage {
    /// The default image: version 9.10.0, a 16 KiB code segment at 0x00100000 and a 4 KiB
    /// data segment.
    pub fn default_image() -> FirmwareImage {
        FirmwareImage::generate(&ImageSpec::default())
    }

    /// Builds an image from `spec` (two segments, each summing to zero).
    pub fn generate(spec: &ImageSpec) -> FirmwareImage {
        let mut rng = crate::rng::SimRng::new(spec.seed);
        let mut words: Vec<u32> = Vec::with_capacity(spec.code_words + spec.data_words);
        let mut seg = |words: &mut Vec<u32>, index: u32, addr: u32, len: usize, head: &[u32]| {
            let len = len.max(SEGMENT_HEADER_WORDS + head.len() + 1);
            let start = words.len();
            words.extend_from_slice(&[IMAGE_MAGIC, index, addr, len as u32]);
            words.extend_from_slice(head);
            while words.len() < start + len - 1 {
                words.push(rng.next_u32());
            }
            let sum = checksum(words[start..].iter().copied());
            words.push(sum.wrapping_neg());
        };
        let (maj, min, sub) = spec.version;
        seg(
            &mut words,
            0,
            RISC_START_ADDRESS,
            spec.code_words,
            &[maj as u32, min as u32, sub as u32, spec.attributes as u32],
        );
        seg(&mut words, 1, spec.data_addr, spec.data_words, &[]);
        FirmwareImage {
            bytes: words.iter().flat_map(|w| w.to_be_bytes()).collect(),
        }
    }

    /// An image from bytes (checked for segment structure only).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<FirmwareImage, ImageError> {
        let img = FirmwareImage { bytes };
        img.try_segments()?;
        Ok(img)
    }

    /// The big-endian bytes (what a driver's firmware file holds).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn try_segments(&self) -> Result<Vec<Segment<'_>>, ImageError> {
        if !self.bytes.len().is_multiple_of(4) {
            return Err(ImageError::Truncated);
        }
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < self.bytes.len() {
            let word = |i: usize| -> Result<u32, ImageError> {
                let b = self
                    .bytes
                    .get(at + 4 * i..at + 4 * i + 4)
                    .ok_or(ImageError::Truncated)?;
                Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            };
            let addr = word(2)?;
            let len = word(3)? as usize;
            if len < SEGMENT_HEADER_WORDS {
                return Err(ImageError::BadLength);
            }
            let end = at.checked_add(len * 4).ok_or(ImageError::Truncated)?;
            let bytes = self.bytes.get(at..end).ok_or(ImageError::Truncated)?;
            out.push(Segment {
                load_addr: addr,
                bytes,
            });
            at = end;
        }
        Ok(out)
    }

    /// The segments in order.
    pub fn segments(&self) -> Vec<Segment<'_>> {
        self.try_segments().unwrap_or_default()
    }

    /// The RISC address to VERIFY_CHECKSUM and EXECUTE_FIRMWARE at (the first segment's).
    pub fn start_address(&self) -> u32 {
        self.segments()
            .first()
            .map(|s| s.load_addr)
            .unwrap_or(RISC_START_ADDRESS)
    }

    /// The image with one word of segment `seg` changed (a corrupt image, for tests).
    pub fn corrupted(&self, seg: usize, word: usize) -> FirmwareImage {
        let mut bytes = self.bytes.clone();
        let mut at = 0usize;
        for (i, s) in self.segments().iter().enumerate() {
            if i == seg {
                let w = at + 4 * (word % s.words());
                if let Some(b) = bytes.get_mut(w + 3) {
                    *b ^= 0x01;
                }
            }
            at += s.bytes.len();
        }
        FirmwareImage { bytes }
    }
}

/// 4096 words and the bitmap of the loaded ones.
type RamPage = (Box<[u32; 4096]>, Box<[u64; 64]>);

/// The RISC's memory: a sparse map of 4096-word pages (addresses are word addresses), with
/// a bitmap of the words actually loaded.
#[derive(Debug, Default, Clone)]
pub(crate) struct RiscRam {
    pages: std::collections::BTreeMap<u32, RamPage>,
}

impl RiscRam {
    pub(crate) fn clear(&mut self) {
        self.pages.clear();
    }

    pub(crate) fn write(&mut self, addr: u32, words: &[u32]) {
        for (i, &w) in words.iter().enumerate() {
            let a = addr.wrapping_add(i as u32);
            let (page, bits) = self
                .pages
                .entry(a >> 12)
                .or_insert_with(|| (Box::new([0u32; 4096]), Box::new([0u64; 64])));
            let o = (a & 0xFFF) as usize;
            page[o] = w;
            bits[o / 64] |= 1 << (o % 64);
        }
    }

    /// The word at `addr`, if it was loaded.
    pub(crate) fn read(&self, addr: u32) -> Option<u32> {
        let (page, bits) = self.pages.get(&(addr >> 12))?;
        let o = (addr & 0xFFF) as usize;
        (bits[o / 64] & (1 << (o % 64)) != 0).then_some(page[o])
    }

    /// The segment at `addr` if its header says it starts there and all its words are
    /// loaded: (length, checksum). `None` otherwise.
    pub(crate) fn segment(&self, addr: u32) -> Option<(u32, u32)> {
        let load = self.read(addr.wrapping_add(2))?;
        let len = self.read(addr.wrapping_add(3))?;
        if load != addr || (len as usize) < SEGMENT_HEADER_WORDS || len > 0x0100_0000 {
            return None;
        }
        let mut sum = 0u32;
        for i in 0..len {
            sum = sum.wrapping_add(self.read(addr.wrapping_add(i))?);
        }
        Some((len, sum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_image_has_two_zero_sum_segments() {
        let img = FirmwareImage::default_image();
        let segs = img.segments();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].load_addr, RISC_START_ADDRESS);
        assert_eq!(segs[0].words(), 4096);
        assert_eq!(segs[1].load_addr, 0x0020_0000);
        for s in &segs {
            let words = s
                .bytes
                .chunks(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            assert_eq!(checksum(words), 0);
        }
        assert_eq!(img.start_address(), RISC_START_ADDRESS);
        // Version words.
        assert_eq!(
            &segs[0].bytes[16..28],
            &[0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 0, 0]
        );
        let bad = img.corrupted(0, 100);
        let s = &bad.segments()[0];
        let words = s
            .bytes
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        assert_ne!(checksum(words), 0);
        assert!(FirmwareImage::from_bytes(img.as_bytes()[..10].to_vec()).is_err());
        assert!(FirmwareImage::from_bytes(img.as_bytes().to_vec()).is_ok());
    }

    #[test]
    fn risc_ram_segment_lookup() {
        let mut ram = RiscRam::default();
        let img = FirmwareImage::default_image();
        let seg = img.segments()[0];
        let words: Vec<u32> = seg
            .bytes
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        ram.write(seg.load_addr, &words[..100]);
        assert_eq!(ram.segment(seg.load_addr), None, "partially loaded");
        ram.write(seg.load_addr + 100, &words[100..]);
        assert_eq!(ram.segment(seg.load_addr), Some((4096, 0)));
        assert_eq!(ram.segment(seg.load_addr + 1), None);
        ram.clear();
        assert_eq!(ram.read(seg.load_addr), None);
    }
}
