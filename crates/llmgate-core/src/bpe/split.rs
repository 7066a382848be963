//! tiktoken's pre-tokenizers without a backtracking engine.
//!
//! Both patterns end in `\s+(?!\S)` followed by a last resort (`\s+` for o200k_base, `\s` for
//! cl100k_base). The negative look-ahead is all that needs backtracking: tiktoken runs the
//! pattern on `fancy-regex`, whose backtracking VM cost about 5,500 instructions for the
//! three pieces of "Say hello." and 2.7 M of the 3.47 M a chat request with a 7.2 KB prompt
//! cost through the full stack (`bench/callgrind`, `chat_long`: 1.58 M now). Here the pattern
//! is a set of three, run by `regex-automata`'s lazy DFA, anchored where the last piece ended:
//!
//! 1. every other alternative, in tiktoken's order, and `\s+$`;
//! 2. `\s+\s`, whose last character is then given back;
//! 3. the last resort.
//!
//! On a run of whitespace that earlier alternatives leave alone, `\s+(?!\S)` takes all of it
//! when it ends the text (2. cannot, so 1. says so with `\s+$`), and all of it but its last
//! character when something else follows and it is at least two long (2.), else nothing, so
//! the last resort takes over (3.): what the three sets do. cl100k_base's possessive
//! quantifiers (`?+`, `++`, `*+`, `{1,3}+`), which `regex-automata` does not have, are made
//! greedy: in this pattern no alternative could succeed by giving back what they took.
//! The same rewrite is the one GitHub's `bpe-openai` crate makes.
//! `tests::random_texts_split_as_tiktoken_does` compares the pieces with those of tiktoken's
//! own pattern, and `bpe::tests::counts_match_tiktoken` the counts with tiktoken's.

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};

/// cl100k_base's alternatives before its look-ahead (tiktoken-rs's `cl100k_base()`, the
/// possessive quantifiers made greedy), and the end of the text.
const CL100K_REST: &str = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s+$|\\s*[\\r\\n]";

/// o200k_base's alternatives before its look-ahead (tiktoken-rs's `O200K_BASE_PAT_STR`), and
/// the end of the text.
const O200K_REST: &str = concat!(
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+$",
);

/// `\s+(?!\S)` without the look-ahead: the character after the run is matched, then given back.
const LOOK_AHEAD: &str = "\\s+\\s";

/// The pattern set's second member: its match ends one character late.
const GIVES_BACK: usize = 1;

/// An encoding's pre-tokenizer: splits text into the pieces tiktoken's pattern finds.
pub(crate) struct Split {
    patterns: Regex,
}

impl Split {
    /// o200k_base's pre-tokenizer.
    pub(crate) fn o200k() -> Option<Split> {
        Split::new(O200K_REST, "\\s+")
    }

    /// cl100k_base's pre-tokenizer.
    pub(crate) fn cl100k() -> Option<Split> {
        Split::new(CL100K_REST, "\\s")
    }

    fn new(rest: &str, last_resort: &str) -> Option<Split> {
        let patterns = Regex::new_many(&[rest, LOOK_AHEAD, last_resort]).ok()?;
        Some(Split { patterns })
    }

    /// The pieces of `text`, in order, as tiktoken's `find_iter` gives them.
    ///
    /// Each piece is searched for where the last ended (anchored: the patterns match every
    /// character, so the next piece starts there). Should one not, the search moves on as
    /// tiktoken's does, and what it passes over is in no piece.
    pub(crate) fn pieces<'t>(&'t self, text: &'t str) -> impl Iterator<Item = &'t str> + 't {
        let mut at = 0;
        std::iter::from_fn(move || {
            let from = Input::new(text).range(at..);
            let found = self
                .patterns
                .search(&from.clone().anchored(Anchored::Yes))
                .or_else(|| self.patterns.search(&from))?;
            let mut end = found.end();
            if found.pattern().as_usize() == GIVES_BACK {
                end -= text[..end].chars().next_back().map_or(0, char::len_utf8);
            }
            if end <= found.start() {
                return None;
            }
            at = end;
            Some(&text[found.start()..end])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cl100k_base's pattern as tiktoken-rs's `cl100k_base()` gives it (not a public constant).
    const CL100K_TIKTOKEN: &str = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|\\s++$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s";

    /// Characters of every class the patterns tell apart: whitespace of several kinds (ASCII,
    /// no-break, ideographic, line separator), newlines, letters of each case class, a
    /// combining mark, digits of three kinds, the contraction letters and apostrophe, `/`
    /// (o200k_base keeps it after punctuation), punctuation and an emoji.
    const ALPHABET: &[char] = &[
        ' ', ' ', ' ', '\t', '\n', '\r', '\u{a0}', '\u{3000}', '\u{2028}', 'a', 'Z', 'é', 'ǅ', 'ʰ',
        '東', '\u{301}', '1', '٣', 'Ⅻ', '½', '\'', 's', 't', 'l', 'v', 'e', 'r', 'd', 'm', 'S',
        'L', '.', ',', '/', '-', '🚀', '"',
    ];

    /// `n` texts of up to 24 characters from [`ALPHABET`], the same every run (xorshift).
    fn random_texts(n: usize) -> Vec<String> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..n)
            .map(|_| {
                let len = (next() % 25) as usize;
                (0..len)
                    .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn random_texts_split_as_tiktoken_does() {
        for (split, pattern) in [
            (Split::o200k().unwrap(), tiktoken_rs::O200K_BASE_PAT_STR),
            (Split::cl100k().unwrap(), CL100K_TIKTOKEN),
        ] {
            let tiktoken = fancy_regex::Regex::new(pattern).unwrap();
            for text in random_texts(20_000) {
                let theirs: Vec<&str> = tiktoken
                    .find_iter(&text)
                    .map(|m| m.unwrap().as_str())
                    .collect();
                let ours: Vec<&str> = split.pieces(&text).collect();
                assert_eq!(ours, theirs, "{pattern}: {text:?}");
            }
        }
    }

    #[test]
    fn whitespace_before_text_leaves_its_last_character_to_the_text() {
        let split = Split::o200k().unwrap();
        let pieces = |t| split.pieces(t).collect::<Vec<_>>();
        assert_eq!(pieces("a   b"), ["a", "  ", " b"]);
        assert_eq!(pieces("a \u{3000}東"), ["a", " ", "\u{3000}東"]);
        assert_eq!(pieces("a   "), ["a", "   "]);
        assert_eq!(pieces("a \n b"), ["a", " \n", " b"]);
        let split = Split::cl100k().unwrap();
        let pieces = |t| split.pieces(t).collect::<Vec<_>>();
        assert_eq!(pieces("a  1"), ["a", " ", " ", "1"]);
    }
}
