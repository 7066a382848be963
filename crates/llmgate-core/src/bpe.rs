//! OpenAI's tokenizers for counting only: the ranks of `o200k_base` and `cl100k_base` read in
//! place from a compact table compiled into the binary, without tiktoken-rs's full tables.
//!
//! tiktoken-rs's `CoreBPE` keeps, for every token, its bytes in its own `Vec` twice (an encoder
//! and a decoder map), a sorted third copy of them, the special tokens, and 128 clones of its
//! pre-tokenizer regex. Counting needs only `bytes -> rank`. The build script (`build.rs`)
//! reads the encodings' rank files (`data/*.tiktoken`, the files tiktoken-rs bundles, MIT: see
//! `data/NOTICE.md`) and writes each as one table ([`layout`]: the tokens' bytes, where each
//! starts, and an open-addressing index of `u32` slots), 3.2 MB for o200k_base; [`Table`]
//! reads it where it lies in the binary. Nothing is decoded or allocated at run time, and the
//! kernel pages in only what counts touch: with the table decoded into a hash map at the first
//! count, `bench/memory` measured the full stack's heap 19.1 MB above the master-key config's
//! after the warm-up, and 2.2 MB with the table read in place; `bench/callgrind` measured the
//! first request of each kind at 209 M instructions, and 25 M (docs/benchmarks-memory.md,
//! "Idle memory").
//!
//! The count is tiktoken's `encode_ordinary(text).len()` (which `CoreBPE::count_ordinary` is):
//! the pieces of tiktoken's pre-tokenizer pattern ([`split`]: the same pieces, found without
//! a backtracking engine), each one token when it is one, else split by tiktoken's byte-pair merge (`_byte_pair_merge` below 100 bytes, the
//! heap-based `_byte_pair_merge_large` from 100, both ported here from tiktoken, MIT, to count
//! instead of collecting ranks). `tests::counts_match_tiktoken` holds the two together.

mod layout;
mod split;
mod table;

use std::collections::BinaryHeap;
use std::sync::OnceLock;

use split::Split;
use table::Table;

type Rank = u32;

/// The ranks an encoding gives byte strings, and its pre-tokenizer.
pub(crate) struct Ranks {
    ranks: Table,
    split: Split,
}

/// The encodings counted here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// gpt-4o, gpt-4.1, gpt-5, o1/o3/o4 (and gpt-oss's o200k_harmony, whose ordinary tokens are
    /// o200k_base's).
    O200k,
    /// gpt-4, gpt-3.5.
    Cl100k,
}

impl Ranks {
    /// The encoding's ranks, ready on first use and kept for the process; `None` when they
    /// cannot be read (never for the bundled encodings).
    pub(crate) fn get(encoding: Encoding) -> Option<&'static Ranks> {
        static O200K: OnceLock<Option<Ranks>> = OnceLock::new();
        static CL100K: OnceLock<Option<Ranks>> = OnceLock::new();
        match encoding {
            Encoding::O200k => O200K.get_or_init(|| {
                Ranks::new(
                    include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.ranks")),
                    Split::o200k(),
                )
            }),
            Encoding::Cl100k => CL100K.get_or_init(|| {
                Ranks::new(
                    include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.ranks")),
                    Split::cl100k(),
                )
            }),
        }
        .as_ref()
    }

    fn new(table: &'static [u8], split: Option<Split>) -> Option<Ranks> {
        Some(Ranks {
            ranks: Table::new(table)?,
            split: split?,
        })
    }

    /// The number of tokens `text` encodes to (no special tokens).
    pub(crate) fn count(&self, text: &str) -> u64 {
        self.split
            .pieces(text)
            .map(|piece| self.piece(piece.as_bytes()))
            .sum()
    }

    fn rank(&self, bytes: &[u8]) -> Rank {
        self.ranks.rank(bytes).unwrap_or(Rank::MAX)
    }

    /// Tokens in one pre-tokenized piece.
    fn piece(&self, piece: &[u8]) -> u64 {
        if piece.len() <= 1 || self.ranks.rank(piece).is_some() {
            return piece.len().min(1) as u64;
        }
        if piece.len() < 100 {
            self.merge(piece)
        } else {
            self.merge_large(piece)
        }
    }

    /// tiktoken's `_byte_pair_merge`, counting the parts it leaves.
    fn merge(&self, piece: &[u8]) -> u64 {
        // (start, rank of the pair starting there)
        let mut parts: Vec<(usize, Rank)> = Vec::with_capacity(piece.len() + 1);
        let mut min = (Rank::MAX, usize::MAX);
        for i in 0..piece.len() - 1 {
            let rank = self.rank(&piece[i..i + 2]);
            if rank < min.0 {
                min = (rank, i);
            }
            parts.push((i, rank));
        }
        parts.push((piece.len() - 1, Rank::MAX));
        parts.push((piece.len(), Rank::MAX));
        let rank_at = |parts: &[(usize, Rank)], i: usize| {
            if i + 3 < parts.len() {
                self.rank(&piece[parts[i].0..parts[i + 3].0])
            } else {
                Rank::MAX
            }
        };
        while min.0 != Rank::MAX {
            let i = min.1;
            if i > 0 {
                parts[i - 1].1 = rank_at(&parts, i - 1);
            }
            parts[i].1 = rank_at(&parts, i);
            parts.remove(i + 1);
            min = (Rank::MAX, usize::MAX);
            for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
                if rank < min.0 {
                    min = (rank, i);
                }
            }
        }
        (parts.len() - 1) as u64
    }

    /// tiktoken's `_byte_pair_merge_large` (a heap of candidate merges), counting the tokens.
    fn merge_large(&self, piece: &[u8]) -> u64 {
        let mut state = Vec::with_capacity(piece.len());
        state.push(State::new(usize::MAX, 1));
        let mut heap = BinaryHeap::with_capacity(piece.len());
        for i in 0..piece.len() - 1 {
            let rank = self.rank(&piece[i..i + 2]);
            if rank != Rank::MAX {
                heap.push(Merge { start: i, rank });
                state[i].next_rank = rank;
            }
            state.push(State::new(i, i + 2));
        }
        let potential =
            |state: &mut Vec<State>, heap: &mut BinaryHeap<Merge>, start: usize, end| {
                state[start].next_end = end;
                state[start].next_rank = Rank::MAX;
                if end <= piece.len() {
                    let rank = self.rank(&piece[start..end]);
                    if rank != Rank::MAX {
                        heap.push(Merge { start, rank });
                        state[start].next_rank = rank;
                    }
                }
            };
        while let Some(left) = heap.pop() {
            if left.rank == Rank::MAX {
                break;
            }
            if left.rank != state[left.start].next_rank {
                continue;
            }
            let left_start = left.start;
            let right_start = state[left_start].end;
            let right_end = state[left_start].next_end;
            let right_next_end = state[right_start].next_end;
            state[left_start].end = right_end;
            potential(&mut state, &mut heap, left_start, right_next_end);
            if right_end < state.len() {
                state[right_end].prev = left_start;
            }
            if left_start > 0 {
                let prev_start = state[left_start].prev;
                potential(&mut state, &mut heap, prev_start, right_end);
            }
            state[right_start].next_rank = Rank::MAX;
        }
        let mut tokens = 0;
        let mut i = 0;
        while i < state.len() {
            tokens += 1;
            i = state[i].end;
        }
        tokens
    }
}

struct State {
    prev: usize,
    end: usize,
    next_end: usize,
    next_rank: Rank,
}

impl State {
    fn new(prev: usize, end: usize) -> Self {
        State {
            prev,
            end,
            next_end: end + 1,
            next_rank: Rank::MAX,
        }
    }
}

#[derive(PartialEq, Eq)]
struct Merge {
    start: usize,
    rank: Rank,
}

impl Ord for Merge {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The lowest rank first, then the leftmost: BinaryHeap pops the greatest.
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.start.cmp(&self.start))
    }
}

impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts that reach every path: single bytes, whole-token pieces, short and long merges
    /// (a piece of 100 bytes and more goes through the heap), non-ASCII, digits, whitespace
    /// runs, contractions, and text that looks like a special token.
    fn corpus() -> Vec<String> {
        let mut texts: Vec<String> = [
            "",
            "a",
            "Hello, how are you today?",
            "Say hello.",
            "I'm sure they'll've done it; we'd rather not. IT'S LOUD",
            "  leading and trailing   \n\n\t tabs\r\n",
            "12345678901234567890 3.14159 1e10 0x7fff",
            "naïve café, Zürich — 東京 في 🚀🚀 ẞ ǅ",
            "<|endoftext|> is not special here",
            "def f(x):\n    return {\"k\": [1, 2, 3]}  # comment\n",
            "https://example.com/path?q=1&r=two#frag",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.push("x".repeat(150));
        texts.push("abcdefghij".repeat(30));
        texts.push("🚀".repeat(40));
        texts.push("Pneumonoultramicroscopicsilicovolcanoconiosis".repeat(5));
        texts.push("word ".repeat(500));
        texts
    }

    #[test]
    fn counts_match_tiktoken() {
        for (encoding, bpe) in [
            (Encoding::O200k, tiktoken_rs::o200k_base_singleton()),
            (Encoding::Cl100k, tiktoken_rs::cl100k_base_singleton()),
        ] {
            let ranks = Ranks::get(encoding).unwrap();
            for text in corpus() {
                assert_eq!(
                    ranks.count(&text),
                    bpe.count_ordinary(&text) as u64,
                    "{encoding:?}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn every_ordinary_token_and_no_special_one() {
        for (encoding, bpe, len) in [
            (
                Encoding::O200k,
                tiktoken_rs::o200k_base_singleton(),
                199_998,
            ),
            (
                Encoding::Cl100k,
                tiktoken_rs::cl100k_base_singleton(),
                100_256,
            ),
        ] {
            let table = &Ranks::get(encoding).unwrap().ranks;
            assert_eq!(table.len(), len, "{encoding:?}");
            for rank in 0..len {
                let token = bpe.decode_bytes(&[rank as Rank]).unwrap();
                assert_eq!(table.token(rank), token.as_slice(), "{encoding:?} {rank}");
                assert_eq!(
                    table.rank(&token),
                    Some(rank as Rank),
                    "{encoding:?} {rank}"
                );
            }
            assert_eq!(table.rank(b"<|endoftext|>"), None);
            assert_eq!(table.rank(b"\xff\xfe not a token \x00"), None);
        }
    }

    #[test]
    fn a_table_that_does_not_fit_together_is_refused() {
        let tokens = vec![b"a".to_vec(), b"bc".to_vec()];
        let table: &'static [u8] = Box::leak(layout::write(&tokens).unwrap().into_boxed_slice());
        let read = Table::new(table).unwrap();
        assert_eq!((read.rank(b"bc"), read.rank(b"b")), (Some(1), None));
        assert!(Table::new(&table[..table.len() - 1]).is_none());
        assert!(Table::new(&table[1..]).is_none());
    }
}
