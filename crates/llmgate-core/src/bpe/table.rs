//! An encoding's ranks read in place from the table the build script wrote ([`super::layout`]),
//! compiled into the binary: nothing is decoded or allocated, and the kernel pages in only the
//! parts a count touches.

use super::layout::{hash, tag, HEADER, MAGIC, RANK_BITS};
use super::Rank;

/// One encoding's `bytes -> rank` map.
pub(crate) struct Table {
    starts: &'static [u8],
    slots: &'static [u8],
    arena: &'static [u8],
    mask: usize,
}

/// The little-endian `u32` at index `i` of `words`.
fn word(words: &[u8], i: usize) -> Option<u32> {
    let bytes = words.get(4 * i..4 * i + 4)?;
    bytes.try_into().ok().map(u32::from_le_bytes)
}

impl Table {
    /// Reads the header and checks the parts fit together; `None` when they do not.
    pub(crate) fn new(table: &'static [u8]) -> Option<Table> {
        if table.get(..MAGIC.len())? != MAGIC {
            return None;
        }
        let len = word(table, 2)? as usize;
        let bits = word(table, 3)?;
        if bits > 30 || len >= 1 << RANK_BITS || len >= 1 << bits {
            return None;
        }
        let slots_at = HEADER + 4 * (len + 1);
        let arena_at = slots_at + (4 << bits);
        let arena = table.get(arena_at..)?;
        let starts = table.get(HEADER..slots_at)?;
        if word(starts, len)? as usize != arena.len() {
            return None;
        }
        Some(Table {
            starts,
            slots: table.get(slots_at..arena_at)?,
            arena,
            mask: (1 << bits) - 1,
        })
    }

    /// The number of tokens.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.starts.len() / 4 - 1
    }

    /// Token `rank`'s bytes (empty for a rank out of range).
    pub(crate) fn token(&self, rank: usize) -> &'static [u8] {
        let span = word(self.starts, rank).zip(word(self.starts, rank + 1));
        span.and_then(|(start, end)| self.arena.get(start as usize..end as usize))
            .unwrap_or_default()
    }

    /// The rank of `bytes`, if they are a token.
    pub(crate) fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        let h = hash(bytes);
        let tag = tag(h);
        let mut i = h as usize & self.mask;
        // At most 80 % of the slots are taken: an empty one ends every search. The bound only
        // guards against a table that is not what the build script writes.
        for _ in 0..=self.mask {
            let slot = word(self.slots, i)?;
            if slot == 0 {
                return None;
            }
            if slot >> RANK_BITS == tag {
                let rank = (slot & ((1 << RANK_BITS) - 1)) - 1;
                if self.token(rank as usize) == bytes {
                    return Some(rank);
                }
            }
            i = (i + 1) & self.mask;
        }
        None
    }
}
