//! C2SP `tlog-tiles` paths and encodings: hash tiles (`tile/<L>/<N>[.p/<W>]`, 256 hashes of
//! tree level 8·L each) and entry bundles (`tile/entries/<N>[.p/<W>]`, each entry a big-endian
//! uint16 length then its bytes).
//!
//! Owns the byte formats only; it never reads or writes storage.

/// Tile height: a tile holds 2^8 = 256 hashes.
pub const HEIGHT: u32 = 8;
/// Hashes (or entries) in a full tile (or bundle).
pub const WIDTH: u64 = 1 << HEIGHT;
/// The largest entry a bundle can carry.
pub const MAX_ENTRY: usize = u16::MAX as usize;

/// `N` as path elements: zero-padded groups of three digits, all but the last prefixed `x`
/// (1234067 → `x001/x234/067`).
pub fn encode_index(n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

fn with_width(base: String, width: u64) -> String {
    if width >= WIDTH {
        base
    } else {
        format!("{base}.p/{width}")
    }
}

/// The path of hash tile `index` at tile level `level` holding `width` hashes.
pub fn tile_path(level: u32, index: u64, width: u64) -> String {
    with_width(format!("tile/{level}/{}", encode_index(index)), width)
}

/// The path of entry bundle `index` holding `width` entries.
pub fn entries_path(index: u64, width: u64) -> String {
    with_width(format!("tile/entries/{}", encode_index(index)), width)
}

/// Parses a tile or bundle path: (level, or `None` for entries; index; width).
pub fn parse_path(p: &str) -> Option<(Option<u32>, u64, u64)> {
    let rest = p.strip_prefix("tile/")?;
    let (level, rest) = rest.split_once('/')?;
    let level = if level == "entries" {
        None
    } else {
        // Digits only, no leading zero: `parse` alone would accept `+3`.
        if !level.bytes().all(|b| b.is_ascii_digit()) || (level.len() > 1 && level.starts_with('0'))
        {
            return None;
        }
        Some(level.parse::<u32>().ok().filter(|l| *l < 64)?)
    };
    let (digits, width) = match rest.split_once(".p/") {
        Some((d, w)) => {
            if w.starts_with('0') || !w.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let w: u64 = w.parse().ok()?;
            if !(1..WIDTH).contains(&w) {
                return None;
            }
            (d, w)
        }
        None => (rest, WIDTH),
    };
    let parts: Vec<&str> = digits.split('/').collect();
    let mut n: u64 = 0;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let d = if last { *part } else { part.strip_prefix('x')? };
        if d.len() != 3 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(d.parse::<u64>().ok()?)?;
    }
    // Canonical form only: no leading `x000` group.
    (encode_index(n) == digits).then_some((level, n, width))
}

/// Why bytes are not a bundle or a tile (C2SP tlog-tiles).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("an entry of {size} bytes is over {MAX_ENTRY}")]
    EntryTooLarge { size: usize },
    #[error("entry {entry} has a truncated length prefix")]
    TruncatedPrefix { entry: usize },
    #[error("entry {entry} is truncated ({have} of {want} bytes)")]
    TruncatedEntry {
        entry: usize,
        have: usize,
        want: usize,
    },
    #[error("more than {WIDTH} entries in one bundle")]
    TooManyEntries,
    #[error("{size} bytes is not a tile of 32-byte hashes")]
    NotATile { size: usize },
}

/// Concatenates entries into a bundle.
pub fn bundle_encode<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge { size: e.len() })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits a bundle into its entries; refuses truncation and trailing bytes.
pub fn bundle_decode(bytes: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(TileError::TruncatedPrefix { entry: out.len() });
        };
        let len = u16::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(TileError::TruncatedEntry {
                entry: out.len(),
                have: tail.len(),
                want: len,
            });
        }
        out.push(&tail[..len]);
        rest = &tail[len..];
        if out.len() as u64 > WIDTH {
            return Err(TileError::TooManyEntries);
        }
    }
    Ok(out)
}

/// Splits a hash tile into hashes; refuses a length that is not a whole number of hashes.
pub fn tile_decode(bytes: &[u8]) -> Result<Vec<crate::merkle::Hash>, TileError> {
    if !bytes.len().is_multiple_of(32) || bytes.len() as u64 > WIDTH * 32 {
        return Err(TileError::NotATile { size: bytes.len() });
    }
    Ok(bytes
        .chunks_exact(32)
        .filter_map(|c| c.try_into().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_c2sp_examples() {
        assert_eq!(encode_index(1234067), "x001/x234/067");
        assert_eq!(encode_index(0), "000");
        assert_eq!(tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 3, 17), "tile/1/003.p/17");
        assert_eq!(entries_path(5, 256), "tile/entries/005");
        assert_eq!(
            parse_path("tile/0/x001/x234/067"),
            Some((Some(0), 1234067, 256))
        );
        assert_eq!(parse_path("tile/entries/003.p/9"), Some((None, 3, 9)));
        for bad in [
            "tile/0/1",
            "tile/0/x000/001",
            "tile/00/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/07",
            "tile/x/001",
            "tile/0/x1/001",
            // Found by fuzzing: `+` signs parse as numbers.
            "tile/+3/333",
            "tile/0/001.p/+5",
        ] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn bundles_round_trip_and_refuse_truncation() {
        let b = bundle_encode([&b"a"[..], b"", b"xyz"]).unwrap();
        assert_eq!(bundle_decode(&b).unwrap(), vec![&b"a"[..], b"", b"xyz"]);
        for n in 1..b.len() {
            if n == 3 || n == 5 {
                continue; // whole entries: a shorter, valid bundle
            }
            assert!(bundle_decode(&b[..n]).is_err(), "{n}");
        }
        assert!(bundle_encode([&vec![0u8; 70_000][..]]).is_err());
    }
}
