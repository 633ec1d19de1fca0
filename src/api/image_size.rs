//! The width and height of an image from its first bytes (PNG, GIF, WebP, JPEG), for
//! the token estimate of an image a provider bills by its size. Reads by `get`, never
//! by index: the bytes are the caller's.

/// How many leading bytes of an image are read for its size: a JPEG's frame header
/// comes after its metadata segments, which are rarely larger.
pub const HEAD_BYTES: usize = 64 * 1024;

fn be16(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u32::from(u16::from_be_bytes([*s.first()?, *s.get(1)?])))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u32::from(u16::from_le_bytes([*s.first()?, *s.get(1)?])))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(s.try_into().ok()?))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(3)?)?;
    Some(u32::from_le_bytes([*s.first()?, *s.get(1)?, *s.get(2)?, 0]))
}

/// `(width, height)` in pixels, if `head` starts an image of a known format.
pub fn dimensions(head: &[u8]) -> Option<(u32, u32)> {
    let size = if head.starts_with(b"\x89PNG\r\n\x1a\n") && head.get(12..16) == Some(b"IHDR") {
        (be32(head, 16)?, be32(head, 20)?)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        (le16(head, 6)?, le16(head, 8)?)
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        webp(head)?
    } else if head.starts_with(b"\xff\xd8") {
        jpeg(head)?
    } else {
        return None;
    };
    (size.0 > 0 && size.1 > 0).then_some(size)
}

fn webp(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        // Lossy: the key frame's start code, then 14-bit width and height.
        b"VP8 " if b.get(23..26) == Some(&[0x9d, 0x01, 0x2a]) => {
            Some((le16(b, 26)? & 0x3fff, le16(b, 28)? & 0x3fff))
        }
        // Lossless: a signature byte, then width - 1 and height - 1 in 14 bits each.
        b"VP8L" if b.get(20) == Some(&0x2f) => {
            let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some((
                (bits & 0x3fff).saturating_add(1),
                ((bits >> 14) & 0x3fff).saturating_add(1),
            ))
        }
        // Extended: the canvas, width - 1 and height - 1 in 24 bits each.
        b"VP8X" => Some((
            le24(b, 24)?.saturating_add(1),
            le24(b, 27)?.saturating_add(1),
        )),
        _ => None,
    }
}

/// A JPEG's size from its first start-of-frame segment, walking the segments before.
fn jpeg(b: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2usize;
    loop {
        if *b.get(at)? != 0xff {
            return None;
        }
        let marker = *b.get(at.checked_add(1)?)?;
        match marker {
            // Fill bytes.
            0xff => at = at.checked_add(1)?,
            // Markers without a length.
            0x01 | 0xd0..=0xd7 => at = at.checked_add(2)?,
            // Start of frame (not DHT, JPG or DAC): precision, height, width.
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                return Some((be16(b, at.checked_add(7)?)?, be16(b, at.checked_add(5)?)?));
            }
            // Start of scan or end of image before any frame: not an image we can size.
            0xd9 | 0xda => return None,
            _ => {
                at = at
                    .checked_add(2)?
                    .checked_add(be16(b, at.checked_add(2)?)? as usize)?
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_each_format() {
        // A 1x1 PNG (the mock's), and a header claiming 800x600.
        let png = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
        )
        .unwrap();
        assert_eq!(dimensions(&png), Some((1, 1)));
        let mut big = png.clone();
        big[16..24].copy_from_slice(&[0, 0, 3, 32, 0, 0, 2, 88]);
        assert_eq!(dimensions(&big), Some((800, 600)));
        let gif = b"GIF89a\x20\x03\x58\x02rest";
        assert_eq!(dimensions(gif), Some((800, 600)));
        // A JPEG: SOI, an APP0 segment of 16 bytes, then SOF0 (height 600, width 800).
        let mut jpg = vec![0xff, 0xd8, 0xff, 0xe0, 0, 16];
        jpg.extend([0u8; 14]);
        jpg.extend([0xff, 0xc0, 0, 17, 8, 2, 88, 3, 32, 3]);
        assert_eq!(dimensions(&jpg), Some((800, 600)));
        // WebP: lossy, lossless and extended.
        let mut vp8 = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0".to_vec();
        vp8.extend([0, 0, 0, 0x9d, 0x01, 0x2a, 0x20, 0x03, 0x58, 0x02]);
        assert_eq!(dimensions(&vp8), Some((800, 600)));
        let mut vp8l = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f".to_vec();
        let bits: u32 = 799 | (599 << 14);
        vp8l.extend(bits.to_le_bytes());
        assert_eq!(dimensions(&vp8l), Some((800, 600)));
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\0\0\0\0\0\0\0\0".to_vec();
        vp8x.extend([0x1f, 0x03, 0, 0x57, 0x02, 0]);
        assert_eq!(dimensions(&vp8x), Some((800, 600)));
    }

    #[test]
    fn anything_else_or_cut_short_has_no_size() {
        for b in [
            &b""[..],
            b"not an image",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0",
            b"\xff\xd8\xff\xe0\x00\x10",
            b"\xff\xd8\xff\xda\x00\x02",
            b"RIFF\0\0\0\0WEBPVP8 ",
            b"GIF89a\0\0\0\0",
        ] {
            assert_eq!(dimensions(b), None, "{b:?}");
        }
    }
}
