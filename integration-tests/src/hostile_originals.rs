//! Hostile originals built from their formats' specifications, shared by
//! the bad-bytes tests and `make bench`'s bad-bytes section.
//!
//! Every file is written byte by byte from its specification (PNG chunks
//! with their CRC, zlib and deflate streams, GIF blocks with hand-packed
//! LZW codes, JPEG segments with hand-built Huffman tables), never copied
//! from the service's output.

// --- PNG, by its specification (RFC 2083) ---

/// One PNG chunk: length, type, data, CRC-32 of type and data.
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Adler-32 (RFC 1950 §8.2) of `prefix` followed by `zeros` zero bytes:
/// each zero leaves `a` as it is and adds it to `b` once more.
fn adler32_then_zeros(prefix: &[u8], zeros: u64) -> u32 {
    let (mut a, mut b) = (1u64, 0u64);
    for &byte in prefix {
        a = (a + u64::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    b = (b + (zeros % 65_521) * a) % 65_521;
    ((b << 16) | a) as u32
}

/// A zlib stream (RFC 1950) holding `data` in stored deflate blocks
/// (RFC 1951 §3.2.4), with its Adler-32.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        let last = u8::from(i + 1 == blocks.len());
        out.push(last);
        let len = u16::try_from(block.len()).unwrap();
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// Writes deflate's bit stream (RFC 1951 §3.1.1): values least
/// significant bit first, Huffman codes most significant bit first.
#[derive(Debug, Default)]
struct BitWriter {
    out: Vec<u8>,
    bits: u64,
    count: u32,
}

// === impl BitWriter ===

impl BitWriter {
    /// `len` bits of `value`, least significant first.
    fn value(&mut self, value: u32, len: u32) {
        self.bits |= u64::from(value) << self.count;
        self.count += len;
        while self.count >= 8 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.count -= 8;
        }
    }

    /// A Huffman code of `len` bits, most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        let reversed = code.reverse_bits() >> (32 - len);
        self.value(reversed, len);
    }

    /// The bytes, the last one padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.out.push(self.bits as u8);
        }
        self.out
    }
}

/// A zlib stream that inflates to `prefix` and then `1 + 258 × matches`
/// zero bytes at the densest ratio deflate allows (about 1032 : 1):
/// `prefix` in a stored block (RFC 1951 §3.2.4), then one dynamic-Huffman
/// block (§3.2.7) whose codes give a literal 0, then `matches` copies of
/// length 258 at distance 1 for two bits each.
pub fn zlib_bomb(prefix: &[u8], matches: u64) -> Vec<u8> {
    let mut bits = BitWriter::default();
    // Not final, BTYPE = 00, padded to the byte; LEN, NLEN, the bytes.
    bits.value(0, 3);
    bits.value(0, 5);
    let len = u16::try_from(prefix.len()).unwrap();
    bits.value(u32::from(len), 16);
    bits.value(u32::from(!len), 16);
    for &byte in prefix {
        bits.value(u32::from(byte), 8);
    }
    // BFINAL, BTYPE = 10 (dynamic Huffman).
    bits.value(1, 1);
    bits.value(2, 2);
    // HLIT = 286 − 257 literal/length codes, HDIST = 1 − 1, HCLEN = 18 − 4.
    bits.value(29, 5);
    bits.value(0, 5);
    bits.value(14, 4);
    // Code-length code lengths in deflate's order (16, 17, 18, 0, 8, 7,
    // 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1): 18 → 1 bit, 2 and 1 → 2.
    for len in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        bits.value(len, 3);
    }
    // The code-length codes, canonical: 18 = 0, 1 = 10, 2 = 11.
    let length_2 = |bits: &mut BitWriter| bits.code(0b11, 2);
    let length_1 = |bits: &mut BitWriter| bits.code(0b10, 2);
    let zeros = |bits: &mut BitWriter, run: u32| {
        bits.code(0, 1);
        bits.value(run - 11, 7);
    };
    // Literal 0 → 2 bits, 1–255 unused, end of block (256) → 2 bits,
    // 257–284 unused, length 258 (285) → 1 bit; distance 1 (code 0) → 1.
    length_2(&mut bits);
    zeros(&mut bits, 138);
    zeros(&mut bits, 117);
    length_2(&mut bits);
    zeros(&mut bits, 28);
    length_1(&mut bits);
    length_1(&mut bits);
    // Canonical literal/length codes: 285 = 0, 0 = 10, 256 = 11;
    // distance 0 = 0.
    bits.code(0b10, 2);
    // Each copy is the codes 0 (length 258) and 0 (distance 1): zero bits.
    let mut zero_bits = 2 * matches;
    while zero_bits > 0 {
        let run = zero_bits.min(32);
        bits.value(0, run as u32);
        zero_bits -= run;
    }
    bits.code(0b11, 2);
    let mut out = vec![0x78, 0x01];
    out.extend(bits.finish());
    out.extend_from_slice(&adler32_then_zeros(prefix, 1 + 258 * matches).to_be_bytes());
    out
}

/// A PNG of `width × height` 8-bit RGB declared in its IHDR, with
/// `ancillary` chunks before the image data and `idat` as its (already
/// compressed) image data.
pub fn png_with(
    width: u32,
    height: u32,
    ancillary: &[(&[u8; 4], Vec<u8>)],
    idat: &[u8],
) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in ancillary {
        png_chunk(&mut out, kind, data);
    }
    png_chunk(&mut out, b"IDAT", idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// The raw scanlines of a `width × height` RGB image: each row a filter
/// byte (0) and mid-grey pixels.
pub fn grey_scanlines(width: usize, height: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity((width * 3 + 1) * height);
    for _ in 0..height {
        raw.push(0);
        raw.extend(std::iter::repeat_n(128u8, width * 3));
    }
    raw
}

/// A PNG declaring 50000 × 50000 pixels (2.5 GP) in a few KB: its image
/// data holds only the first rows.
pub fn png_pixel_bomb() -> Vec<u8> {
    let first_rows = zlib_stored(&vec![0u8; 4096]);
    png_with(50_000, 50_000, &[], &first_rows)
}

/// A valid 64 × 48 grey PNG whose `kind` chunk (`zTXt` or `iCCP`) is a
/// keyword, compression method 0 and a zlib bomb inflating to about
/// `inflated_bytes` bytes: zero text, or an ICC profile whose 128-byte
/// header (ICC.1 §7.2) declares that size and the `acsp` signature,
/// followed by zeros.
pub fn png_with_zlib_bomb(kind: &[u8; 4], inflated_bytes: u32) -> Vec<u8> {
    let (mut data, prefix) = if kind == b"iCCP" {
        let mut header = vec![0u8; 128];
        header[..4].copy_from_slice(&inflated_bytes.to_be_bytes());
        header[36..40].copy_from_slice(b"acsp");
        (b"bomb\0\0".to_vec(), header)
    } else {
        (b"Comment\0\0".to_vec(), Vec::new())
    };
    let matches = (u64::from(inflated_bytes) - prefix.len() as u64 - 1) / 258;
    data.extend(zlib_bomb(&prefix, matches));
    png_with(
        64,
        48,
        &[(kind, data)],
        &zlib_stored(&grey_scanlines(64, 48)),
    )
}

// --- GIF, by its specification (GIF89a) ---

/// An animated 1 × 1 GIF of `frames` frames: a global colour table of two
/// entries and, per frame, a graphic control extension and a one-pixel
/// image whose LZW data (minimum code size 2) is the codes clear (4),
/// pixel 0, end (5) at 3 bits each, packed least significant bit first.
pub fn gif_with_frames(frames: usize) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    // Logical screen 1 × 1, global colour table of 2 entries, background 0.
    out.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    // NETSCAPE2.0: loop forever.
    out.extend_from_slice(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00");
    for _ in 0..frames {
        // Graphic control: no transparency, a delay of 1/100 s.
        out.extend_from_slice(&[0x21, 0xF9, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00]);
        // Image descriptor at (0, 0), 1 × 1, no local table.
        out.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
        // LZW: 4 | 0 << 3 | 5 << 6 = 0x144 → bytes 0x44 0x01.
        out.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00]);
    }
    out.push(0x3B);
    out
}

// --- JPEG, by its specification (ITU T.81, Annex G) ---

/// One JPEG marker segment: `FF marker`, its length and `data`.
fn jpeg_segment(out: &mut Vec<u8>, marker: u8, data: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&u16::try_from(data.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(data);
}

/// Entropy-coded bits (T.81 F.1.2.3): codes most significant bit first,
/// padded with one bits, every `FF` followed by a stuffed `00`.
#[derive(Debug, Default)]
struct JpegBits {
    out: Vec<u8>,
    bits: u32,
    count: u32,
}

// === impl JpegBits ===

impl JpegBits {
    fn put(&mut self, value: u32, len: u32) {
        for i in (0..len).rev() {
            self.bits = (self.bits << 1) | ((value >> i) & 1);
            self.count += 1;
            if self.count == 8 {
                self.push_byte();
            }
        }
    }

    fn push_byte(&mut self) {
        let byte = self.bits as u8;
        self.out.push(byte);
        if byte == 0xFF {
            self.out.push(0);
        }
        self.bits = 0;
        self.count = 0;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            let pad = 8 - self.count;
            self.put((1 << pad) - 1, pad);
        }
        self.out
    }
}

/// A progressive mid-grey JPEG of `width × height` with three components
/// (4:4:4) and every scan the progression rules allow (T.81 G.1.1.1.1):
/// one DC scan, then for each component and each AC coefficient 1–63 its
/// own spectral band, first at point transform 13 and then refined one bit
/// at a time down to 0, 1 + 3 × 63 × 14 = 2647 scans. All coefficients are
/// zero, so each AC scan is a few end-of-band runs (EOBRUN, up to 32767
/// blocks per code) and costs a few bytes, while a decoder walks every
/// block of the component for it.
pub fn jpeg_with_legal_scans(width: u16, height: u16) -> Vec<u8> {
    const COMPONENTS: u8 = 3;
    let mut out = vec![0xFF, 0xD8];
    // JFIF APP0, so three components read as YCbCr.
    jpeg_segment(&mut out, 0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    // One quantisation table (0) of all ones.
    let mut dqt = vec![0u8];
    dqt.extend([1u8; 64]);
    jpeg_segment(&mut out, 0xDB, &dqt);
    // SOF2: 8-bit precision, the size, each component 1 × 1 on table 0.
    let mut sof = vec![8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.push(COMPONENTS);
    for id in 1..=COMPONENTS {
        sof.extend_from_slice(&[id, 0x11, 0]);
    }
    jpeg_segment(&mut out, 0xC2, &sof);
    // DC table 0: the one symbol 0 (difference category 0) as code `0`.
    // AC table 0: the 15 end-of-band-run symbols r << 4 (r = 0–14) as the
    // 4-bit codes 0000–1110 in that order.
    let mut dht = vec![0x00, 1];
    dht.extend([0u8; 15]);
    dht.push(0);
    dht.extend_from_slice(&[0x10, 0, 0, 0, 15]);
    dht.extend([0u8; 12]);
    dht.extend((0..15u8).map(|r| r << 4));
    jpeg_segment(&mut out, 0xC4, &dht);

    let blocks_across = usize::from(width).div_ceil(8);
    let blocks_down = usize::from(height).div_ceil(8);
    let blocks = blocks_across * blocks_down;
    // The DC scan, interleaved: each block's difference is category 0.
    let mut sos = vec![COMPONENTS];
    for id in 1..=COMPONENTS {
        sos.extend_from_slice(&[id, 0x00]);
    }
    sos.extend_from_slice(&[0, 0, 0x00]);
    jpeg_segment(&mut out, 0xDA, &sos);
    let mut dc = JpegBits::default();
    for _ in 0..blocks * usize::from(COMPONENTS) {
        dc.put(0, 1);
    }
    out.extend(dc.finish());
    // AC scans, one component each (T.81 G.1.1.1.1 requires it).
    let band_of_zeros = || {
        let mut bits = JpegBits::default();
        let mut left = blocks;
        while left > 0 {
            let run = left.min(32_767);
            let r = usize::BITS - 1 - run.leading_zeros();
            bits.put(r, 4);
            bits.put((run - (1 << r)) as u32, r);
            left -= run;
        }
        bits.finish()
    };
    let band = band_of_zeros();
    for id in 1..=COMPONENTS {
        for k in 1..=63u8 {
            let mut approximations = vec![(0u8, 13u8)];
            approximations.extend((1..=13u8).rev().map(|ah| (ah, ah - 1)));
            for (ah, al) in approximations {
                jpeg_segment(&mut out, 0xDA, &[1, id, 0x00, k, k, (ah << 4) | al]);
                out.extend_from_slice(&band);
            }
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}
