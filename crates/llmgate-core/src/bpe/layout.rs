//! The layout of a rank table as the build script writes it (`build.rs`, from
//! `data/*.tiktoken`) and [`super::table::Table`] reads it, in place, out of the binary.
//!
//! Shared word for word by the two (the build script includes this file), so the hash and the
//! layout cannot drift apart. All integers are little-endian `u32`:
//!
//! ```text
//! MAGIC (8 bytes) | n | bits | starts: n + 1 | slots: 2^bits | arena: the tokens' bytes
//! ```
//!
//! - `starts[r]..starts[r + 1]` is token `r`'s bytes in the arena (ranks run 0..n in order);
//! - `slots` is an open-addressing table (linear probing, at most 80 % full): 0 is empty, else
//!   the top [`TAG_BITS`] bits hold the top bits of the token's [`hash`] and the low
//!   [`RANK_BITS`] its rank + 1, so a probe compares bytes only when the tags agree.

/// The first bytes of a table.
pub(crate) const MAGIC: &[u8; 8] = b"LGRANKS1";
/// Bits of a slot holding rank + 1 (o200k_base has 199,998 ordinary tokens).
pub(crate) const RANK_BITS: u32 = 18;
/// Bits of a slot holding the hash's tag.
pub(crate) const TAG_BITS: u32 = 32 - RANK_BITS;
/// The header: the magic, `n`, `bits`.
pub(crate) const HEADER: usize = 16;

/// A fixed hash of a token's bytes (the table is built at compile time and read at run time,
/// so the hash must not depend on a seed or a crate's version): 8 bytes at a time, multiplied
/// and rotated, then mixed so the low bits (the slot) and the high bits (the tag) both spread.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(K);
    h ^ (h >> 29)
}

/// The tag of a hash, as stored in a slot's top bits (never 0 with the rank beside it).
pub(crate) fn tag(h: u64) -> u32 {
    (h >> (64 - TAG_BITS)) as u32
}

/// The table for `tokens` (token `r` at index `r`), laid out as above; `None` when there are
/// too many tokens for [`RANK_BITS`].
#[allow(
    dead_code,
    reason = "the build script writes the tables; the crate's tests check one"
)]
pub(crate) fn write(tokens: &[Vec<u8>]) -> Option<Vec<u8>> {
    let n = tokens.len();
    if n + 1 >= 1 << RANK_BITS {
        return None;
    }
    // The fewest slots with the table at most 80 % full.
    let mut bits = 4;
    while (1usize << bits) * 4 < n * 5 {
        bits += 1;
    }
    let mask = (1usize << bits) - 1;
    let mut slots = vec![0u32; 1 << bits];
    let mut starts = Vec::with_capacity(n + 1);
    let mut at = 0u32;
    for (rank, token) in tokens.iter().enumerate() {
        starts.push(at);
        at += u32::try_from(token.len()).ok()?;
        let h = hash(token);
        let mut i = h as usize & mask;
        while slots[i] != 0 {
            i = (i + 1) & mask;
        }
        slots[i] = (tag(h) << RANK_BITS) | (rank as u32 + 1);
    }
    starts.push(at);
    let mut out = Vec::with_capacity(HEADER + 4 * (n + 1 + slots.len()) + at as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&(bits as u32).to_le_bytes());
    for word in starts.iter().chain(&slots) {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for token in tokens {
        out.extend_from_slice(token);
    }
    Some(out)
}
